// Calls the wasm backend's own BatchMatMul kernel, on the one path where it uses XNNPACK.
import type { TensorInfo } from '@tensorflow/tfjs';
import { isReplacementInstalled, runStockKernel } from './kernel-registry.js';
import type { WasmBackend } from './wasm-backend.js';

/**
 * out[1, rows, cols] = a[1, rows, inner] · b[1, inner, cols] on the stock wasm BatchMatMul.
 *
 * Deliberately no transpose flags: the stock kernel only takes its XNNPACK path for batch 1
 * without transposes; otherwise it runs a naive loop that measured ~13x slower here (250 ms
 * vs 19 ms for [288x15488]ᵀ·[15488x64]).
 *
 * XNNPACK caches the packed `b` under the key (tensor id, bias id, activation) until that
 * tensor is disposed, and on a cache hit it ignores the shape passed in. So `b` must be a
 * tensor whose bytes were only ever read under this [inner, cols] split (see
 * `mayPassAsPackedOperand`), or a fresh copy.
 */
export function matMulOnWasm(backend: WasmBackend, a: TensorInfo, b: TensorInfo): TensorInfo {
  return runStockKernel('BatchMatMul', backend, { a, b }, { transposeA: false, transposeB: false });
}

/** The inner dimension under which each tensor's bytes were handed to XNNPACK as `b`. */
const packedSplit = new WeakMap<object, number>();

/**
 * Whether `b`'s own bytes may go to XNNPACK as the right-hand [inner, ·] matrix: true unless
 * the same bytes (a reshape shares them) were passed before under another split, in which case
 * the cached packing would be stale and the caller must pass a copy. Records the split.
 */
export function mayPassAsPackedOperand(b: TensorInfo, inner: number): boolean {
  const previous = packedSplit.get(b.dataId);
  if (previous === undefined) packedSplit.set(b.dataId, inner);
  return previous === undefined || previous === inner;
}

/**
 * Whether a tensor that lives on after our kernel (such as a gradient another kernel reads
 * next) may be handed to XNNPACK as `b` without a private copy. Only when every matmul kernel
 * is ours: the stock ones have no split guard, and would reuse the packing this call leaves
 * in the cache if they later met the same bytes under another split.
 */
export function maySharePackedOperand(b: TensorInfo, inner: number): boolean {
  return isReplacementInstalled('BatchMatMul') && isReplacementInstalled('_FusedMatMul') && mayPassAsPackedOperand(b, inner);
}
