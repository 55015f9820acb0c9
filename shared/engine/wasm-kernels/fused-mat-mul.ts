// _FusedMatMul (matmul + bias + activation) for the wasm backend. The stock kernel is right
// only for a single untransposed product: with a transpose flag, batch > 1 or a scalar bias it
// adds the bias once per 48-wide block of the summed dimension, clamps partial sums and
// broadcasts the bias wrongly (8–38% relative error measured against the cpu backend).
import type { _FusedMatMulAttrs, _FusedMatMulInputs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { runStockKernel } from './kernel-registry.js';
import { planMatMul, type MatMulPlan } from './matmul-plan.js';
import { multiplyAsUntransposed } from './untransposed-products.js';
import { asWasmBackend, release, withShape, type WasmBackend } from './wasm-backend.js';

/** Activations XNNPACK applies as an output clamp inside the product. */
const CLAMPED = new Set(['linear', 'relu', 'relu6']);

/** A bias that varies along the last axis only ([N], [1, N], …), as XNNPACK's per-column bias. */
function isPerColumn(bias: TensorInfo, cols: number): boolean {
  return bias.shape.length >= 1 && bias.shape[bias.shape.length - 1] === cols && bias.shape.every((size, axis) => axis === bias.shape.length - 1 || size === 1);
}

/** Applies `step` to `current` and releases `current` (an intermediate we own). */
function then(backend: WasmBackend, current: TensorInfo, step: (x: TensorInfo) => TensorInfo): TensorInfo {
  const next = step(current);
  release(backend, current);
  return next;
}

/** Bias and activation as separate stock kernels, with full broadcasting: tfjs-core's unfused route. */
function addBiasAndActivate(backend: WasmBackend, product: TensorInfo, inputs: _FusedMatMulInputs, attrs: _FusedMatMulAttrs): TensorInfo {
  let out = product;
  const { bias, preluActivationWeights } = inputs;
  if (bias !== undefined) out = then(backend, out, (x) => runStockKernel('Add', backend, { a: x, b: bias }, {}));
  switch (attrs.activation) {
    case 'linear':
      return out;
    case 'relu':
      return then(backend, out, (x) => runStockKernel('Relu', backend, { x }, {}));
    case 'relu6':
      return then(backend, out, (x) => runStockKernel('Relu6', backend, { x }, {}));
    case 'elu':
      return then(backend, out, (x) => runStockKernel('Elu', backend, { x }, {}));
    case 'sigmoid':
      return then(backend, out, (x) => runStockKernel('Sigmoid', backend, { x }, {}));
    case 'leakyrelu':
      return then(backend, out, (x) => runStockKernel('LeakyRelu', backend, { x }, { alpha: attrs.leakyreluAlpha ?? 0.2 }));
    case 'prelu':
      if (preluActivationWeights === undefined) throw new Error('_FusedMatMul: prelu needs preluActivationWeights');
      return then(backend, out, (x) => runStockKernel('Prelu', backend, { x, alpha: preluActivationWeights }, {}));
    default:
      throw new Error(`_FusedMatMul: activation '${String(attrs.activation)}' is not supported`);
  }
}

function fusedMatMul(args: { inputs: _FusedMatMulInputs; attrs: _FusedMatMulAttrs; backend: unknown }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { inputs, attrs } = args;
  const { a, b, bias } = inputs;
  if (a === undefined || b === undefined) throw new Error('_FusedMatMul: needs inputs a and b');
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return runStockKernel('_FusedMatMul', backend, { ...inputs }, { ...attrs });
  const transposeA = attrs.transposeA ?? false;
  const transposeB = attrs.transposeB ?? false;
  const plan: MatMulPlan = planMatMul('_FusedMatMul', a.shape, b.shape, transposeA, transposeB);

  const fusedOnXnnpack = plan.batch === 1 && plan.inner > 0 && CLAMPED.has(attrs.activation) && (bias === undefined || isPerColumn(bias, plan.cols));
  if (fusedOnXnnpack) {
    const columnBias = bias === undefined ? undefined : withShape(bias, [plan.cols]);
    return multiplyAsUntransposed(backend, a, b, plan, transposeA, transposeB, (aMatrix, bMatrix) =>
      runStockKernel(
        '_FusedMatMul',
        backend,
        columnBias === undefined ? { a: aMatrix, b: bMatrix } : { a: aMatrix, b: bMatrix, bias: columnBias },
        { transposeA: false, transposeB: false, activation: attrs.activation },
      ),
    );
  }
  const product = multiplyAsUntransposed(backend, a, b, plan, transposeA, transposeB, (aMatrix, bMatrix) =>
    runStockKernel('BatchMatMul', backend, { a: aMatrix, b: bMatrix }, { transposeA: false, transposeB: false }),
  );
  return addBiasAndActivate(backend, product, inputs, attrs);
}

export const fusedMatMulConfig: KernelConfig = {
  kernelName: '_FusedMatMul',
  backendName: 'wasm',
  kernelFunc: fusedMatMul as unknown as KernelFunc,
};
