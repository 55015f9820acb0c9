// Sum for the wasm backend when it reduces the leading axes, as every bias gradient does
// (Σ over batch, rows, columns of an NHWC tensor). The stock kernel first transposes the whole
// input so the reduced axes come last; here one pass adds rows into per-column sums instead.
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, SumAttrs, SumInputs, TensorInfo } from '@tensorflow/tfjs';
import { runStockKernel } from './kernel-registry.js';
import { allocateFloat32, asWasmBackend, heapFloat32 } from './wasm-backend.js';

/** Running sums in float64 (as tfjs's cpu backend accumulates), reused across calls. */
let columnSums = new Float64Array(0);

/**
 * out[c] = Σ_r x[r·columns + c] for the row-major [rows, columns] matrix x. Four rows per pass:
 * one load and store of each running sum per four elements instead of per element
 * (measured 6.8 → 2.6 ms for [86528, 32]).
 */
export function sumRows(x: Float32Array, rows: number, columns: number, out: Float32Array): void {
  if (columnSums.length < columns) columnSums = new Float64Array(columns);
  const sums = columnSums;
  sums.fill(0, 0, columns);
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const b0 = r * columns;
    const b1 = b0 + columns;
    const b2 = b1 + columns;
    const b3 = b2 + columns;
    for (let c = 0; c < columns; c++) sums[c] = sums[c]! + (x[b0 + c]! + x[b1 + c]! + (x[b2 + c]! + x[b3 + c]!));
  }
  for (; r < rows; r++) {
    const base = r * columns;
    for (let c = 0; c < columns; c++) sums[c] = sums[c]! + x[base + c]!;
  }
  for (let c = 0; c < columns; c++) out[c] = sums[c]!;
}

/** How many leading axes `axes` reduces, or 0 when they are not exactly the leading ones. */
function leadingAxesReduced(axes: readonly number[]): number {
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  return sorted.every((axis, i) => axis === i) ? sorted.length : 0;
}

function sum(args: { inputs: SumInputs; attrs: SumAttrs; backend: unknown }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { x } = args.inputs;
  if (x === undefined) throw new Error('Sum: needs input x');
  const axes = tf.util.parseAxisParam(args.attrs.axis, x.shape);
  const leading = leadingAxesReduced(axes);
  // Reducing trailing axes (or all of them) needs no transpose: the stock kernel is fine there.
  if (x.dtype !== 'float32' || leading === 0 || leading === x.shape.length) {
    return runStockKernel('Sum', backend, { x }, { ...args.attrs });
  }
  const rows = x.shape.slice(0, leading).reduce((a, b) => a * b, 1);
  const kept = x.shape.slice(leading);
  const columns = kept.reduce((a, b) => a * b, 1);
  const outShape = args.attrs.keepDims ? [...new Array<number>(leading).fill(1), ...kept] : kept;
  const out = allocateFloat32(backend, outShape);
  // Views only after the allocation: malloc may grow (and detach) the heap.
  sumRows(heapFloat32(backend, x), rows, columns, heapFloat32(backend, out));
  return out;
}

export const sumConfig: KernelConfig = {
  kernelName: 'Sum',
  backendName: 'wasm',
  kernelFunc: sum as unknown as KernelFunc,
};
