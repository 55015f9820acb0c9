// Calls the wasm backend's own BatchMatMul kernel from inside another kernel.
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';
import type { WasmBackend } from './wasm-backend.js';

/**
 * out[1, rows, cols] = a[1, rows, inner] · b[1, inner, cols].
 *
 * Deliberately no transpose flags: the wasm BatchMatMul only takes its XNNPACK path for
 * batch 1 without transposes; with transposeA it falls back to a naive blocked loop that
 * measured ~13x slower here (250 ms vs 19 ms for [288x15488]·[15488x64]). XNNPACK caches
 * the packed `b` keyed on its tensor id until that tensor is disposed, which is safe because
 * tensor data is immutable.
 */
export function matMulOnWasm(backend: WasmBackend, a: TensorInfo, b: TensorInfo): TensorInfo {
  const kernel = tf.getKernel('BatchMatMul', 'wasm');
  if (kernel == null) {
    throw new Error("wasm-kernels: the wasm backend has no 'BatchMatMul' kernel");
  }
  const result = kernel.kernelFunc({
    inputs: { a, b },
    attrs: { transposeA: false, transposeB: false },
    backend,
  });
  if (Array.isArray(result)) {
    throw new Error('wasm-kernels: BatchMatMul returned several outputs');
  }
  return result as TensorInfo;
}
