// BatchMatMul for the wasm backend that stays on XNNPACK for transposed and batched operands.
// tfjs's matMul gradient always passes a transpose flag, which sends the stock kernel down a
// naive loop: 141 ms instead of ~10 ms for the 784→512 layer's weight gradient at batch 128.
import type { BatchMatMulAttrs, BatchMatMulInputs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { runStockKernel } from './kernel-registry.js';
import { planMatMul } from './matmul-plan.js';
import { multiplyAsUntransposed } from './untransposed-products.js';
import { asWasmBackend } from './wasm-backend.js';

function batchMatMul(args: { inputs: BatchMatMulInputs; attrs: BatchMatMulAttrs; backend: unknown }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { a, b } = args.inputs;
  if (a === undefined || b === undefined) throw new Error('BatchMatMul: needs inputs a and b');
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    // The stock kernel owns the error message for other dtypes.
    return runStockKernel('BatchMatMul', backend, { a, b }, { ...args.attrs });
  }
  const transposeA = args.attrs.transposeA ?? false;
  const transposeB = args.attrs.transposeB ?? false;
  const plan = planMatMul('BatchMatMul', a.shape, b.shape, transposeA, transposeB);
  return multiplyAsUntransposed(backend, a, b, plan, transposeA, transposeB, (aMatrix, bMatrix) =>
    runStockKernel('BatchMatMul', backend, { a: aMatrix, b: bMatrix }, { transposeA: false, transposeB: false }),
  );
}

export const batchMatMulConfig: KernelConfig = {
  kernelName: 'BatchMatMul',
  backendName: 'wasm',
  kernelFunc: batchMatMul as unknown as KernelFunc,
};
