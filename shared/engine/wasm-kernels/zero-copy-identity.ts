// Identity, and Cast to the same dtype, for the wasm backend without copying the bytes. tfjs
// clones every tensor it saves for the backward pass (engine.saveTensorsForBackwardMode); the
// stock wasm kernels copy each one (≈ 40 MB per step of the MNIST CNN), while the cpu backend
// only takes another reference. Tensor data is immutable, so sharing it is safe.
import type { CastAttrs, CastInputs, IdentityInputs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { runStockKernel } from './kernel-registry.js';
import { asWasmBackend, type WasmBackend } from './wasm-backend.js';

function shareData(backend: WasmBackend, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

function identity(args: { inputs: IdentityInputs; backend: unknown }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { x } = args.inputs;
  if (x === undefined) throw new Error('Identity: needs input x');
  // String tensors live outside the heap; the stock kernel knows how to copy them.
  if (x.dtype === 'string') return runStockKernel('Identity', backend, { x }, {});
  return shareData(backend, x);
}

function cast(args: { inputs: CastInputs; attrs: CastAttrs; backend: unknown }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { x } = args.inputs;
  if (x === undefined) throw new Error('Cast: needs input x');
  if (x.dtype === args.attrs.dtype && x.dtype !== 'string') return shareData(backend, x);
  return runStockKernel('Cast', backend, { x }, { ...args.attrs });
}

export const identityConfig: KernelConfig = {
  kernelName: 'Identity',
  backendName: 'wasm',
  kernelFunc: identity as unknown as KernelFunc,
};

export const castConfig: KernelConfig = {
  kernelName: 'Cast',
  backendName: 'wasm',
  kernelFunc: cast as unknown as KernelFunc,
};
