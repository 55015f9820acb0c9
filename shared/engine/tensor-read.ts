import * as tf from '@tensorflow/tfjs';

/** The part of the wasm backend read here: its table of tensors and views over its heap. */
interface WasmHeapBackend {
  dataIdMap: { has(dataId: object): boolean };
  typedArrayFromHeap(info: { dataId: object; shape: number[]; dtype: tf.DataType }): Float32Array;
}

function wasmHeapHolding(tensor: tf.Tensor): WasmHeapBackend | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const backend = tf.backend() as unknown as Partial<WasmHeapBackend>;
  if (typeof backend.typedArrayFromHeap !== 'function' || !backend.dataIdMap?.has(tensor.dataId)) return undefined;
  return backend as WasmHeapBackend;
}

/**
 * Copies a float32 tensor's values into `target` at `offset`. On wasm, straight from the backend's
 * heap: `dataSync` there slices the heap into a fresh ArrayBuffer first, and fresh memory is slow on
 * this machine (DESIGN.md §3) — for the mlp's 2 MiB of gradients, a new 2 MiB allocation per step.
 */
export function copyFloat32Into(tensor: tf.Tensor, target: Float32Array, offset = 0): void {
  // The view is used at once: no allocation in between, so the heap cannot grow under it.
  target.set(float32Values(tensor, 'copyFloat32Into'), offset);
}

/** Copies elements [start, end) of a float32 tensor's values into `target` at `offset` (from the wasm heap in place, as copyFloat32Into). */
export function copyFloat32RangeInto(tensor: tf.Tensor, start: number, end: number, target: Float32Array, offset = 0): void {
  const values = float32Values(tensor, 'copyFloat32RangeInto');
  if (!(start >= 0 && start <= end && end <= tensor.size)) throw new Error(`copyFloat32RangeInto: range [${start}, ${end}) outside the tensor's ${tensor.size} values`);
  target.set(values.subarray(start, end), offset);
}

/** A float32 tensor's values: a view of the wasm heap (valid until the next allocation there), else dataSync's array. */
function float32Values(tensor: tf.Tensor, caller: string): Float32Array {
  if (tensor.dtype !== 'float32') throw new Error(`${caller}: expected a float32 tensor, got ${tensor.dtype}`);
  if (tensor.isDisposed) throw new Error(`${caller}: the tensor is disposed`);
  const heap = wasmHeapHolding(tensor);
  return heap ? heap.typedArrayFromHeap({ dataId: tensor.dataId, shape: tensor.shape, dtype: 'float32' }) : (tensor.dataSync() as Float32Array);
}
