// The wasm MaxPoolGrad and Sum replacements must agree with the pure-JS cpu backend: relative
// error = max|wasm − cpu| / max|cpu| < 1e-4, on seeded random cases that name their seed.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { onBackend, relativeError, SeededRandom, sizeOf, TOLERANCE, useWasmTrainingKernels } from './wasm-kernels-support.js';

const SEED = 5_550_123;

useWasmTrainingKernels();

// ---------------------------------------------------------------------------------------------
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

interface PoolCase {
  xShape: [number, number, number, number];
  filter: [number, number];
  stride: [number, number];
  pad: Pad;
  rounding: Rounding;
  /** Values drawn from a few levels (and relu'd), so windows hold ties. */
  ties: boolean;
}

function randomPoolCase(random: SeededRandom): PoolCase {
  for (;;) {
    const filter: [number, number] = [random.int(1, 4), random.int(1, 4)];
    const padKind = random.pick(['valid', 'same', 'number', 'explicit'] as const);
    const pad: Pad =
      padKind === 'number'
        ? random.int(0, 1)
        : padKind === 'explicit'
          ? [[0, 0], [random.int(0, filter[0] - 1), random.int(0, filter[0] - 1)], [random.int(0, filter[1] - 1), random.int(0, filter[1] - 1)], [0, 0]]
          : padKind;
    const c: PoolCase = {
      xShape: [random.int(1, 3), random.int(3, 14), random.int(3, 14), random.int(1, 9)],
      filter,
      stride: [random.int(1, 3), random.int(1, 3)],
      pad,
      rounding: padKind === 'number' ? random.pick(['floor', 'round', 'ceil'] as const) : undefined,
      ties: random.next() < 0.5,
    };
    // The usual maxPooling2d({ poolSize: 2 }) has its own unrolled path: give it a third of the cases.
    if (random.next() < 0.3) Object.assign(c, { filter: [2, 2], stride: [2, 2], pad: 'valid', rounding: undefined });
    const info = tf.backend_util.computePool2DInfo(c.xShape, c.filter, c.stride, 1, c.pad, c.rounding);
    if (info.outHeight > 0 && info.outWidth > 0) return c;
  }
}

function poolAttrs(c: PoolCase): tf.NamedAttrMap {
  const attrs: tf.NamedAttrMap = { filterSize: c.filter, strides: c.stride, pad: c.pad };
  if (c.rounding !== undefined) attrs['dimRoundingMode'] = c.rounding;
  return attrs;
}

/**
 * The pooled output, always on cpu: the stock wasm MaxPool itself overruns the heap for some
 * numeric-padding cases (e.g. x [2,3,12,4], 3×3, strides [2,1], pad 1, 'round').
 */
async function pooledOnCpu(c: PoolCase, x: Float32Array): Promise<tf.TensorBuffer<tf.Rank>> {
  return onBackend('cpu', () => {
    const input = tf.tensor4d(x, c.xShape);
    const output = tf.engine().runKernel('MaxPool', { x: input }, poolAttrs(c)) as tf.Tensor;
    const pooled = output.bufferSync();
    tf.dispose([input, output]);
    return pooled;
  });
}

/** dx of Σ r ⊙ maxPool(x), through the MaxPoolGrad kernel directly. */
function runMaxPoolGrad(c: PoolCase, x: Float32Array, pooled: tf.TensorBuffer<tf.Rank>, r: Float32Array): Float32Array {
  const input = tf.tensor4d(x, c.xShape);
  const output = pooled.toTensor();
  const dy = tf.tensor(r, output.shape);
  const dx = tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, poolAttrs(c)) as tf.Tensor;
  const values = dx.dataSync() as Float32Array;
  tf.dispose([input, output, dy, dx]);
  return values;
}

describe('MaxPoolGrad on wasm vs cpu (random windows, strides, paddings, ties)', () => {
  it(`agrees within ${TOLERANCE} relative error`, async () => {
    const random = new SeededRandom(SEED);
    const failures: string[] = [];
    let withTies = 0;
    for (let i = 0; i < 60; i++) {
      const c = randomPoolCase(random);
      const x = c.ties ? random.floats(sizeOf(c.xShape)).map((v) => Math.max(0, Math.round(v * 2) / 2)) : random.floats(sizeOf(c.xShape));
      if (c.ties) withTies++;
      const pooled = await pooledOnCpu(c, x);
      const r = random.floats(pooled.size);
      const expected = await onBackend('cpu', () => runMaxPoolGrad(c, x, pooled, r));
      const actual = await onBackend('wasm', () => runMaxPoolGrad(c, x, pooled, r));
      const err = relativeError(actual, expected);
      if (!(err < TOLERANCE)) failures.push(`seed ${SEED} case #${i}: relative error ${err} in ${JSON.stringify(c)}`);
    }
    expect(withTies).toBeGreaterThan(10);
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('sends the gradient of a window of NaN or −Infinity nowhere, like cpu (2×2 and 3×3 windows)', async () => {
    const x = new Float32Array(36).map((_, i) => [NaN, -Infinity, 1, NaN][i % 4]!);
    x.fill(NaN, 0, 8);
    x.fill(-Infinity, 12, 20);
    for (const size of [2, 3]) {
      const c: PoolCase = { xShape: [1, 6, 6, 1], filter: [size, size], stride: [size, size], pad: 'valid', rounding: undefined, ties: true };
      const pooled = await pooledOnCpu(c, x);
      const r = Float32Array.from({ length: pooled.size }, (_, i) => i + 1);
      const expected = await onBackend('cpu', () => runMaxPoolGrad(c, x, pooled, r));
      const actual = await onBackend('wasm', () => runMaxPoolGrad(c, x, pooled, r));
      expect(Array.from(actual), `${size}×${size}`).toEqual(Array.from(expected));
    }
  });

  it('sends a tied window its whole gradient, at the first maximum in row-major order', async () => {
    await tf.setBackend('wasm');
    // Windows: [2 2 / 2 1] → (0,0); all zeros → (0,2); [5 5 / 7 7] → (3,0); [4 6 / 6 6] → (2,3).
    const x = tf.tensor4d([2, 2, 0, 0, 2, 1, 0, 0, 5, 5, 4, 6, 7, 7, 6, 6], [1, 4, 4, 1]);
    const weights = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const grad = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(input as tf.Tensor4D, 2, 2, 'valid'), weights)))(x);
    expect(Array.from(grad.dataSync())).toEqual([1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0]);
    tf.dispose([x, weights, grad]);
  });
});

// ---------------------------------------------------------------------------------------------
describe('Sum on wasm vs cpu (leading, trailing, mixed and negative axes; keepDims; int32)', () => {
  it(`agrees within ${TOLERANCE} relative error and has the cpu result's shape`, async () => {
    const random = new SeededRandom(SEED + 1);
    const failures: string[] = [];
    for (let i = 0; i < 60; i++) {
      const rank = random.int(1, 4);
      const shape = Array.from({ length: rank }, () => random.pick([1, random.int(2, 9), random.int(10, 40)]));
      const axisKind = random.pick(['leading', 'trailing', 'random'] as const);
      const count = random.int(1, rank);
      const axes =
        axisKind === 'leading'
          ? Array.from({ length: count }, (_, k) => k)
          : axisKind === 'trailing'
            ? Array.from({ length: count }, (_, k) => rank - count + k)
            : [...new Set(Array.from({ length: count }, () => random.int(0, rank - 1)))];
      const signedAxes = axes.map((axis) => (random.next() < 0.3 ? axis - rank : axis));
      const keepDims = random.next() < 0.5;
      const dtype = random.next() < 0.15 ? 'int32' : 'float32';
      const values = random.floats(sizeOf(shape)).map((v) => (dtype === 'int32' ? Math.round(v * 50) : v));
      const run = () => {
        const x = tf.tensor(values, shape, dtype);
        const out = tf.sum(x, signedAxes, keepDims);
        const result = { shape: out.shape, values: Array.from(out.dataSync()) };
        tf.dispose([x, out]);
        return result;
      };
      const expected = await onBackend('cpu', run);
      const actual = await onBackend('wasm', run);
      const err = relativeError(actual.values, expected.values);
      const sameShape = JSON.stringify(actual.shape) === JSON.stringify(expected.shape);
      if (!(err < TOLERANCE) || !sameShape) {
        failures.push(`seed ${SEED + 1} case #${i}: relative error ${err}, shape ${JSON.stringify(actual.shape)} vs ${JSON.stringify(expected.shape)} for ${dtype} ${JSON.stringify(shape)} axes ${JSON.stringify(signedAxes)} keepDims ${keepDims}`);
      }
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
