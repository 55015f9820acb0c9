// The wasm training kernels must agree with the pure-JS cpu backend, tfjs's reference.
//
// Agreement is measured as relative error = max|wasm − cpu| / max|cpu| over all elements of a
// result, and must stay below 1e-4. Every random case comes from a seeded generator: a failure
// message names the seed and the full case, so it can be replayed.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmTrainingKernels, unregisterWasmTrainingKernels } from '../shared/engine/wasm-kernels/index.js';
import { onBackend, relativeError, SeededRandom, sizeOf as size, TOLERANCE } from './wasm-kernels-support.js';

const SEED = 20_240_611;

type Shape4 = [number, number, number, number];
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

function outputShape(xShape: Shape4, filterShape: Shape4, stride: number, dilation: number, pad: Pad, rounding: Rounding, depthwise: boolean): Shape4 {
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, stride, dilation, pad, rounding, depthwise);
  return info.outShape;
}

/**
 * All replacements on, or the stock Conv2DBackpropInput and matmuls (with which our filter
 * gradient must give XNNPACK a private copy of dy rather than dy itself).
 */
function useKernels(fast: boolean): void {
  unregisterWasmTrainingKernels();
  registerWasmTrainingKernels(fast ? {} : { fastBackpropInput: false, fastMatMul: false });
}

beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  tf.env().set('DEBUG', false);
  registerWasmTrainingKernels();
});

afterAll(() => {
  unregisterWasmTrainingKernels();
});

// ---------------------------------------------------------------------------------------------
/** Kernels the stock wasm backend lacks, and stock kernels we replace by default. */
const MISSING = ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'];
const REPLACED = ['Conv2DBackpropInput', 'BatchMatMul', '_FusedMatMul', 'MaxPoolGrad', 'Sum', 'Identity', 'Cast'];

describe('registration', () => {
  it('fills exactly the missing slots, idempotently, and restores the stock kernels', () => {
    const stock = (() => {
      unregisterWasmTrainingKernels();
      return Object.fromEntries(REPLACED.map((name) => [name, tf.getKernel(name, 'wasm')]));
    })();
    for (const name of REPLACED) expect(stock[name], name).toBeDefined();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();

    const added = registerWasmTrainingKernels();
    expect(added.sort()).toEqual([...MISSING, ...REPLACED].sort());
    for (const name of REPLACED) expect(tf.getKernel(name, 'wasm'), name).not.toBe(stock[name]);
    expect(registerWasmTrainingKernels()).toEqual([]);

    // Opting out of a fast kernel puts the stock one back and keeps the missing ones.
    expect(registerWasmTrainingKernels({ fastBackpropInput: false })).toEqual([]);
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).toBe(stock['Conv2DBackpropInput']);
    expect(tf.getKernel('BatchMatMul', 'wasm')).not.toBe(stock['BatchMatMul']);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();

    expect(unregisterWasmTrainingKernels().sort()).toEqual([...MISSING, ...REPLACED.filter((name) => name !== 'Conv2DBackpropInput')].sort());
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    for (const name of REPLACED) expect(tf.getKernel(name, 'wasm'), name).toBe(stock[name]);
    registerWasmTrainingKernels();
  });

  it('rejects NCHW data with a clear error', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 6, 6, 2]);
    const dy = tf.zeros([1, 4, 4, 3]);
    expect(() =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 2, 3] }),
    ).toThrow(/only NHWC/);
    tf.dispose([x, dy]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: gradients of a random weighted sum of conv2d and depthwiseConv2d, with respect to
// the input and both filters, agree between wasm and cpu. Dilation stays 1 here because the
// tfjs gradients of conv2d / depthwiseConv2d refuse dilations > 1; the kernel-level property
// below covers dilation 2.
interface GradCase {
  xShape: Shape4;
  filterShape: Shape4;
  depthwiseShape: Shape4;
  stride: number;
  pad: Pad;
}

function randomGradCase(random: SeededRandom): GradCase {
  for (;;) {
    const batch = random.int(1, 4);
    const height = random.int(5, 16);
    const width = random.int(5, 16);
    const inChannels = random.int(1, 8);
    const fh = random.int(1, 5);
    const fw = random.int(1, 5);
    const stride = random.pick([1, 2, 3]);
    const pad: Pad = random.pick<Pad>(['valid', 'same', [[0, 0], [random.int(0, 2), random.int(0, 2)], [random.int(0, 2), random.int(0, 2)], [0, 0]]]);
    const candidate: GradCase = {
      xShape: [batch, height, width, inChannels],
      filterShape: [fh, fw, inChannels, random.int(1, 8)],
      depthwiseShape: [fh, fw, inChannels, random.int(1, 3)],
      stride,
      pad,
    };
    const out = outputShape(candidate.xShape, candidate.filterShape, stride, 1, pad, undefined, false);
    if (out[1] > 0 && out[2] > 0) return candidate;
  }
}

interface GradData {
  x: Float32Array;
  filter: Float32Array;
  depthwise: Float32Array;
  convWeights: Float32Array;
  depthwiseWeights: Float32Array;
}

function gradData(c: GradCase, random: SeededRandom): GradData {
  return {
    x: random.floats(size(c.xShape)),
    filter: random.floats(size(c.filterShape)),
    depthwise: random.floats(size(c.depthwiseShape)),
    convWeights: random.floats(size(outputShape(c.xShape, c.filterShape, c.stride, 1, c.pad, undefined, false))),
    depthwiseWeights: random.floats(size(outputShape(c.xShape, c.depthwiseShape, c.stride, 1, c.pad, undefined, true))),
  };
}

/** [d/dx, d/dfilter, d/ddepthwise] of Σ r1⊙conv2d(x, filter) + Σ r2⊙depthwiseConv2d(x, depthwise). */
function convGradients(c: GradCase, d: GradData): Float32Array[] {
  const x = tf.tensor4d(d.x, c.xShape);
  const filter = tf.tensor4d(d.filter, c.filterShape);
  const depthwise = tf.tensor4d(d.depthwise, c.depthwiseShape);
  const grads = tf.grads((xv: tf.Tensor, fv: tf.Tensor, dv: tf.Tensor) => {
    const conv = tf.conv2d(xv as tf.Tensor4D, fv as tf.Tensor4D, c.stride, c.pad);
    const dconv = tf.depthwiseConv2d(xv as tf.Tensor4D, dv as tf.Tensor4D, c.stride, c.pad);
    return tf.add(tf.sum(tf.mul(conv, tf.tensor(d.convWeights, conv.shape))), tf.sum(tf.mul(dconv, tf.tensor(d.depthwiseWeights, dconv.shape))));
  })([x, filter, depthwise]);
  const values = grads.map((g) => g.dataSync() as Float32Array);
  tf.dispose([x, filter, depthwise, ...grads]);
  return values;
}

const GRADIENT_NAMES = ['d/dx', 'd/dfilter (conv2d)', 'd/dfilter (depthwise)'];

describe('conv2d + depthwiseConv2d gradients, wasm vs cpu (random cases)', () => {
  const CASES = 60;

  it(`agree within ${TOLERANCE} relative error, with our and the stock Conv2DBackpropInput and matmuls`, async () => {
    const random = new SeededRandom(SEED);
    const failures: string[] = [];
    for (let i = 0; i < CASES; i++) {
      const c = randomGradCase(random);
      const d = gradData(c, random);
      const expected = await onBackend('cpu', () => convGradients(c, d));
      for (const fast of [true, false]) {
        useKernels(fast);
        const actual = await onBackend('wasm', () => convGradients(c, d));
        actual.forEach((values, k) => {
          const err = relativeError(values, expected[k]!);
          if (!(err < TOLERANCE)) {
            failures.push(`seed ${SEED} case #${i} ${GRADIENT_NAMES[k]} fast kernels=${fast}: relative error ${err} in ${JSON.stringify(c)}`);
          }
        });
      }
    }
    useKernels(true);
    expect(failures, failures.join('\n')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property at kernel level, including dilation 2, numeric padding with dimRoundingMode and
// explicit padding. tfjs's cpu kernels ignore dilation, so the reference uses the identity
//   conv(x, f, dilation d) = conv(x, f', dilation 1)
// where f' is f with d−1 zero taps inserted between neighbours: the input gradient is the
// undilated one with f', and the filter gradient is the undilated f'-gradient read at the taps
// that are not inserted zeros.
type KernelName = 'Conv2DBackpropFilter' | 'Conv2DBackpropInput' | 'DepthwiseConv2dNativeBackpropFilter' | 'DepthwiseConv2dNativeBackpropInput';

interface KernelCase {
  kernel: KernelName;
  xShape: Shape4;
  filterShape: Shape4;
  stride: number;
  dilation: number;
  pad: Pad;
  rounding: Rounding;
}

const isDepthwise = (kernel: KernelName): boolean => kernel.startsWith('Depthwise');

function randomKernelCase(random: SeededRandom, kernel: KernelName): KernelCase {
  for (;;) {
    const inChannels = random.int(1, 8);
    const xShape: Shape4 = [random.int(1, 4), random.int(5, 16), random.int(5, 16), inChannels];
    const lastAxis = isDepthwise(kernel) ? random.int(1, 3) : random.int(1, 8);
    const filterShape: Shape4 = [random.int(1, 5), random.int(1, 5), inChannels, lastAxis];
    const padKind = random.pick(['valid', 'same', 'number', 'explicit'] as const);
    const pad: Pad =
      padKind === 'number'
        ? random.int(0, 2)
        : padKind === 'explicit'
          ? [[0, 0], [random.int(0, 3), random.int(0, 3)], [random.int(0, 3), random.int(0, 3)], [0, 0]]
          : padKind;
    const rounding: Rounding = padKind === 'number' ? random.pick(['floor', 'round', 'ceil'] as const) : undefined;
    const c: KernelCase = { kernel, xShape, filterShape, stride: random.pick([1, 2, 3]), dilation: random.pick([1, 2]), pad, rounding };
    const out = outputShape(xShape, filterShape, c.stride, c.dilation, pad, rounding, isDepthwise(kernel));
    if (out[1] > 0 && out[2] > 0) return c;
  }
}

function dilatedFilterShape([fh, fw, ci, co]: Shape4, d: number): Shape4 {
  return [(fh - 1) * d + 1, (fw - 1) * d + 1, ci, co];
}

/** Copies between a filter and its zero-inserted dilation (`toDilated`) or back. */
function mapDilatedTaps(shape: Shape4, d: number, source: ArrayLike<number>, toDilated: boolean): Float32Array {
  const [fh, fw, ci, co] = shape;
  const wide = dilatedFilterShape(shape, d);
  const out = new Float32Array(toDilated ? size(wide) : size(shape));
  const inner = ci * co;
  for (let h = 0; h < fh; h++) {
    for (let w = 0; w < fw; w++) {
      const compact = (h * fw + w) * inner;
      const dilated = (h * d * wide[1] + w * d) * inner;
      for (let k = 0; k < inner; k++) {
        if (toDilated) out[dilated + k] = source[compact + k]!;
        else out[compact + k] = source[dilated + k]!;
      }
    }
  }
  return out;
}

interface KernelData {
  x: Float32Array;
  filter: Float32Array;
  dy: Float32Array;
}

function kernelData(c: KernelCase, random: SeededRandom): KernelData {
  const dyShape = outputShape(c.xShape, c.filterShape, c.stride, c.dilation, c.pad, c.rounding, isDepthwise(c.kernel));
  return { x: random.floats(size(c.xShape)), filter: random.floats(size(c.filterShape)), dy: random.floats(size(dyShape)) };
}

/** Runs the kernel with the given filter geometry (`dilation`), returning its flat output. */
function runConvKernel(c: KernelCase, d: KernelData, filterShape: Shape4, filter: Float32Array, dilation: number): Float32Array {
  const depthwise = isDepthwise(c.kernel);
  const dyShape = outputShape(c.xShape, filterShape, c.stride, dilation, c.pad, c.rounding, depthwise);
  const common: tf.NamedAttrMap = { strides: c.stride, pad: c.pad, dilations: dilation };
  if (c.rounding !== undefined) common['dimRoundingMode'] = c.rounding;
  if (!depthwise) common['dataFormat'] = 'NHWC';
  const dy = tf.tensor4d(d.dy, dyShape);
  const isFilterGradient = c.kernel.endsWith('BackpropFilter');
  const operand = isFilterGradient ? tf.tensor4d(d.x, c.xShape) : tf.tensor4d(filter, filterShape);
  const result = isFilterGradient
    ? (tf.engine().runKernel(c.kernel, { x: operand, dy }, { ...common, filterShape }) as tf.Tensor)
    : (tf.engine().runKernel(c.kernel, { dy, filter: operand }, { ...common, inputShape: c.xShape }) as tf.Tensor);
  const values = result.dataSync() as Float32Array;
  tf.dispose([dy, operand, result]);
  return values;
}

function referenceOnCpu(c: KernelCase, d: KernelData): Float32Array {
  const wideShape = dilatedFilterShape(c.filterShape, c.dilation);
  const wideFilter = mapDilatedTaps(c.filterShape, c.dilation, d.filter, true);
  const result = runConvKernel(c, d, wideShape, wideFilter, 1);
  return c.kernel.endsWith('BackpropFilter') ? mapDilatedTaps(c.filterShape, c.dilation, result, false) : result;
}

describe('conv backprop kernels, wasm vs cpu (random cases incl. dilation 2, numeric and explicit padding)', () => {
  const KERNELS: KernelName[] = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'];
  const CASES_PER_KERNEL = 40;

  it.each(KERNELS)(`%s agrees within ${TOLERANCE} relative error`, async (kernel) => {
    useKernels(true); // Conv2DBackpropInput: only our kernel honours dilations
    const seed = SEED + KERNELS.indexOf(kernel);
    const random = new SeededRandom(seed);
    const failures: string[] = [];
    let dilatedCases = 0;
    for (let i = 0; i < CASES_PER_KERNEL; i++) {
      const c = randomKernelCase(random, kernel);
      const d = kernelData(c, random);
      if (c.dilation > 1) dilatedCases++;
      const expected = await onBackend('cpu', () => referenceOnCpu(c, d));
      const actual = await onBackend('wasm', () => runConvKernel(c, d, c.filterShape, d.filter, c.dilation));
      const err = relativeError(actual, expected);
      if (!(err < TOLERANCE)) failures.push(`seed ${seed} case #${i}: relative error ${err} in ${JSON.stringify(c)}`);
    }
    expect(dilatedCases).toBeGreaterThan(0);
    expect(failures, failures.join('\n')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// A tiny CNN takes one SGD step on each backend from identical weights and data.
describe('tiny CNN training step', () => {
  const INPUT: Shape4 = [4, 12, 12, 3];
  const CLASSES = 5;

  function buildModel(): tf.LayersModel {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: INPUT.slice(1), filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: CLASSES, activation: 'softmax' }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
    return model;
  }

  /** Weights before and after one trainOnBatch, as flat arrays. */
  async function oneStep(initial: Float32Array[], x: Float32Array, labels: Float32Array): Promise<Float32Array[]> {
    const model = buildModel();
    model.setWeights(model.getWeights().map((w, i) => tf.tensor(initial[i]!, w.shape)));
    const xs = tf.tensor4d(x, INPUT);
    const ys = tf.tensor2d(labels, [INPUT[0], CLASSES]);
    await model.trainOnBatch(xs, ys);
    const after = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
    tf.dispose([xs, ys]);
    model.dispose();
    return after;
  }

  it(`updates every weight identically on wasm and cpu (within ${TOLERANCE} relative)`, async () => {
    const random = new SeededRandom(SEED + 100);
    const initial = await onBackend('cpu', () => buildModel().getWeights().map((w) => random.floats(size(w.shape)).map((v) => v * 0.5)));
    const x = random.floats(size(INPUT));
    const labels = new Float32Array(INPUT[0] * CLASSES);
    for (let n = 0; n < INPUT[0]; n++) labels[n * CLASSES + random.int(0, CLASSES - 1)] = 1;

    const cpuAfter = await (await onBackend('cpu', () => oneStep(initial, x, labels)));
    useKernels(true);
    const wasmAfter = await (await onBackend('wasm', () => oneStep(initial, x, labels)));

    const report: string[] = [];
    cpuAfter.forEach((cpuWeights, i) => {
      // Compare the step itself (after − before), not only the weights, so a wrong gradient
      // cannot hide behind the much larger initial values.
      const cpuDelta = cpuWeights.map((v, k) => v - initial[i]![k]!);
      const wasmDelta = wasmAfter[i]!.map((v, k) => v - initial[i]![k]!);
      const deltaErr = relativeError(wasmDelta, cpuDelta);
      const weightErr = relativeError(wasmAfter[i]!, cpuWeights);
      expect(Math.max(...cpuDelta.map(Math.abs)), `weight ${i} must move`).toBeGreaterThan(0);
      if (!(deltaErr < TOLERANCE && weightErr < TOLERANCE)) report.push(`weight ${i}: step error ${deltaErr}, weight error ${weightErr}`);
    });
    expect(report, `seed ${SEED + 100}\n${report.join('\n')}`).toEqual([]);
  });
});
