// The small slice of the tfjs wasm backend that our kernels touch: heap allocation, heap
// views and reference-counted disposal. Kept in one place so the casts live here only.
import type { TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type WasmBackend = BackendWasm;

/** Kernel functions receive the backend untyped; every wasm kernel we register runs on BackendWasm. */
export function asWasmBackend(backend: unknown): WasmBackend {
  const candidate = backend as Partial<WasmBackend> | null;
  if (candidate == null || typeof candidate.typedArrayFromHeap !== 'function' || typeof candidate.makeOutput !== 'function') {
    throw new Error('wasm-kernels: expected the tfjs wasm backend');
  }
  return candidate as WasmBackend;
}

/** Allocates an uninitialised float32 buffer in the wasm heap (malloc: contents are garbage). */
export function allocateFloat32(backend: WasmBackend, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, 'float32');
}

/**
 * A Float32Array over the tensor's heap bytes. Take it only after every allocation of the
 * kernel: a later malloc may grow the wasm memory, which detaches earlier views.
 */
export function heapFloat32(backend: WasmBackend, info: TensorInfo): Float32Array {
  if (info.dtype !== 'float32') {
    throw new Error(`wasm-kernels: expected a float32 tensor, got ${info.dtype}`);
  }
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/**
 * The same heap bytes under another shape: no copy and no reference taken. Used to view an
 * input as a matrix, and to hand a matmul output back with the kernel's output shape.
 */
export function withShape(info: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

export function release(backend: WasmBackend, info: TensorInfo): void {
  backend.disposeData(info.dataId);
}
