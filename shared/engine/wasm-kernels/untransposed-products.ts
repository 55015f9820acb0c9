// A batched, broadcast, possibly transposed matrix product done as a series of single
// untransposed products: the only kind the wasm backend runs on XNNPACK.
import type { TensorInfo } from '@tensorflow/tfjs';
import type { MatMulPlan } from './matmul-plan.js';
import { transposeInto } from './transpose.js';
import { mayPassAsPackedOperand } from './wasm-matmul.js';
import { allocateFloat32, heapFloat32, release, withShape, type WasmBackend } from './wasm-backend.js';

/** a[1, M, K] · b[1, K, N] → a new [1, M, N] tensor (the caller owns it). */
export type SingleProduct = (a: TensorInfo, b: TensorInfo) => TensorInfo;

/**
 * Writes matrix `index` of `source` into `target` as a row-major [rows, cols] matrix. With
 * `transposed`, the source matrices are stored [cols, rows] and get transposed on the way.
 */
function materialise(source: Float32Array, index: number, rows: number, cols: number, transposed: boolean, target: Float32Array): void {
  const offset = index * rows * cols;
  if (transposed) transposeInto(source, offset, cols, rows, target, 0);
  else target.set(source.subarray(offset, offset + rows * cols));
}

/**
 * out[..., M, N] = op(a)[..., M, K] · op(b)[..., K, N] with op = transpose where asked, for every
 * broadcast batch index, each through `multiplyOne`. Operands already in the right layout are
 * passed as they are (an untransposed single `a` always; a single `b` unless its bytes were
 * packed by XNNPACK under another split), the others are copied or transposed into scratch
 * tensors first. A shared `b` is materialised once, so XNNPACK packs it once.
 */
export function multiplyAsUntransposed(
  backend: WasmBackend,
  a: TensorInfo,
  b: TensorInfo,
  plan: MatMulPlan,
  transposeA: boolean,
  transposeB: boolean,
  multiplyOne: SingleProduct,
): TensorInfo {
  const { rows, inner, cols, batch } = plan;
  if (batch * rows * cols === 0 || inner === 0) {
    const empty = allocateFloat32(backend, plan.outShape);
    heapFloat32(backend, empty).fill(0); // an empty sum is 0
    return empty;
  }
  const aAsIs = plan.aMatrices === 1 && !transposeA;
  const bShared = plan.bMatrices === 1;
  const bAsIs = bShared && !transposeB && mayPassAsPackedOperand(b, inner);

  const aScratch = aAsIs ? undefined : allocateFloat32(backend, [1, rows, inner]);
  const bScratchShared = bShared && !bAsIs ? allocateFloat32(backend, [1, inner, cols]) : undefined;
  const out = batch === 1 ? undefined : allocateFloat32(backend, plan.outShape);
  // Heap views are taken right before each use: any allocation may grow (and detach) the heap.
  if (bScratchShared !== undefined) materialise(heapFloat32(backend, b), 0, inner, cols, transposeB, heapFloat32(backend, bScratchShared));

  let aLoaded = -1;
  let bLoaded = -1;
  let bScratch: TensorInfo | undefined;
  let result: TensorInfo | undefined;
  for (let i = 0; i < batch; i++) {
    const aIndex = plan.aMatrixOf[i]!;
    const bIndex = plan.bMatrixOf[i]!;
    if (aScratch !== undefined && aIndex !== aLoaded) {
      materialise(heapFloat32(backend, a), aIndex, rows, inner, transposeA, heapFloat32(backend, aScratch));
      aLoaded = aIndex;
    }
    if (!bShared && bIndex !== bLoaded) {
      // A fresh tensor (a fresh id) per distinct matrix: XNNPACK's packing cache is keyed on the id.
      if (bScratch !== undefined) release(backend, bScratch);
      bScratch = allocateFloat32(backend, [1, inner, cols]);
      materialise(heapFloat32(backend, b), bIndex, inner, cols, transposeB, heapFloat32(backend, bScratch));
      bLoaded = bIndex;
    }
    const aMatrix = aScratch ?? withShape(a, [1, rows, inner]);
    const bMatrix = bScratchShared ?? bScratch ?? withShape(b, [1, inner, cols]);
    const productOfPair = multiplyOne(aMatrix, bMatrix);
    if (out === undefined) {
      result = withShape(productOfPair, plan.outShape);
    } else {
      heapFloat32(backend, out).set(heapFloat32(backend, productOfPair), i * rows * cols);
      release(backend, productOfPair);
    }
  }
  for (const scratch of [aScratch, bScratchShared, bScratch]) if (scratch !== undefined) release(backend, scratch);
  return out ?? result!;
}
