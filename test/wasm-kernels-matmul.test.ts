// The wasm BatchMatMul / _FusedMatMul replacements must agree with the pure-JS cpu backend for
// every transpose combination, batch sizes above 1 and broadcast batch dimensions, and must
// never reuse a stale XNNPACK packing. Relative error = max|wasm − cpu| / max|cpu| < 1e-4; the
// random cases are seeded and a failure names its seed and case.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterEach, describe, expect, it } from 'vitest';
import { FAST_KERNELS_ENV, fastKernelsByDefault, registerWasmTrainingKernels, unregisterWasmTrainingKernels } from '../shared/engine/wasm-kernels/index.js';
import { onBackend, relativeError, SeededRandom, sizeOf, TOLERANCE, useWasmTrainingKernels } from './wasm-kernels-support.js';

const SEED = 7_340_021;

useWasmTrainingKernels();

// ---------------------------------------------------------------------------------------------
interface MatMulCase {
  aShape: number[];
  bShape: number[];
  transposeA: boolean;
  transposeB: boolean;
  /** Broadcast that tfjs's cpu BatchMatMul gets wrong (it reads batch i as i mod size). */
  crossBroadcast: boolean;
}

/** Batch-dimension layouts: none, equal, one side 1, different ranks, and broadcast both ways. */
const BATCH_LAYOUTS: readonly ((r: SeededRandom) => { a: number[]; b: number[]; cross: boolean })[] = [
  () => ({ a: [], b: [], cross: false }),
  (r) => {
    const n = r.int(2, 4);
    return { a: [n], b: [n], cross: false };
  },
  (r) => ({ a: [1], b: [r.int(2, 4)], cross: false }),
  (r) => ({ a: [r.int(2, 4)], b: [1], cross: false }),
  (r) => ({ a: [2, r.int(2, 3)], b: [], cross: false }),
  (r) => ({ a: [], b: [r.int(2, 3)], cross: false }),
  (r) => ({ a: [2, 1], b: [1, 3], cross: true }),
  (r) => ({ a: [r.int(2, 3), 1], b: [2], cross: true }),
];

function randomMatMulCase(random: SeededRandom, transposeA: boolean, transposeB: boolean): MatMulCase {
  const layout = random.pick(BATCH_LAYOUTS)(random);
  // Sizes around the 32-wide transpose tile and the stock kernel's 48-wide block.
  const size = () => random.pick([1, 2, 3, random.int(4, 31), random.int(32, 49), random.int(50, 80)]);
  const [m, k, n] = [size(), size(), size()];
  return {
    aShape: [...layout.a, ...(transposeA ? [k, m] : [m, k])],
    bShape: [...layout.b, ...(transposeB ? [n, k] : [k, n])],
    transposeA,
    transposeB,
    crossBroadcast: layout.cross,
  };
}

/** Independent float64 reference with true broadcasting, for the cases cpu gets wrong. */
function referenceProduct(c: MatMulCase, a: Float32Array, b: Float32Array): Float64Array {
  const m = c.transposeA ? c.aShape.at(-1)! : c.aShape.at(-2)!;
  const k = c.transposeA ? c.aShape.at(-2)! : c.aShape.at(-1)!;
  const n = c.transposeB ? c.bShape.at(-2)! : c.bShape.at(-1)!;
  const aBatch = c.aShape.slice(0, -2);
  const bBatch = c.bShape.slice(0, -2);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const pad = (shape: number[]) => [...new Array<number>(outBatch.length - shape.length).fill(1), ...shape];
  const [aPadded, bPadded] = [pad(aBatch), pad(bBatch)];
  const out = new Float64Array(sizeOf(outBatch) * m * n);
  for (let flat = 0; flat < sizeOf(outBatch); flat++) {
    let rest = flat;
    let aIndex = 0;
    let bIndex = 0;
    let aStride = 1;
    let bStride = 1;
    for (let axis = outBatch.length - 1; axis >= 0; axis--) {
      const coordinate = rest % outBatch[axis]!;
      rest = Math.floor(rest / outBatch[axis]!);
      aIndex += (aPadded[axis] === 1 ? 0 : coordinate) * aStride;
      bIndex += (bPadded[axis] === 1 ? 0 : coordinate) * bStride;
      aStride *= aPadded[axis]!;
      bStride *= bPadded[axis]!;
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          const av = a[aIndex * m * k + (c.transposeA ? p * m + i : i * k + p)]!;
          const bv = b[bIndex * k * n + (c.transposeB ? j * k + p : p * n + j)]!;
          sum += av * bv;
        }
        out[(flat * m + i) * n + j] = sum;
      }
    }
  }
  return out;
}

function runBatchMatMul(c: MatMulCase, a: Float32Array, b: Float32Array): Float32Array {
  const at = tf.tensor(a, c.aShape);
  const bt = tf.tensor(b, c.bShape);
  const out = tf.engine().runKernel('BatchMatMul', { a: at, b: bt }, { transposeA: c.transposeA, transposeB: c.transposeB }) as tf.Tensor;
  const values = out.dataSync() as Float32Array;
  tf.dispose([at, bt, out]);
  return values;
}

const TRANSPOSES = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

describe('BatchMatMul on wasm vs cpu (random shapes, all transpose combinations, broadcast batches)', () => {
  it.each(TRANSPOSES)(`transposeA=%s transposeB=%s agrees within ${TOLERANCE}`, async (transposeA, transposeB) => {
    const seed = SEED + 2 * Number(transposeA) + Number(transposeB);
    const random = new SeededRandom(seed);
    const failures: string[] = [];
    let batched = 0;
    for (let i = 0; i < 30; i++) {
      const c = randomMatMulCase(random, transposeA, transposeB);
      const a = random.floats(sizeOf(c.aShape));
      const b = random.floats(sizeOf(c.bShape));
      if (c.aShape.length > 2 || c.bShape.length > 2) batched++;
      const reference = referenceProduct(c, a, b);
      if (!c.crossBroadcast) {
        // The float64 reference must itself agree with tfjs's cpu kernel wherever that is defined.
        const cpu = await onBackend('cpu', () => runBatchMatMul(c, a, b));
        const referenceErr = relativeError(reference, cpu);
        if (!(referenceErr < TOLERANCE)) failures.push(`seed ${seed} case #${i}: reference vs cpu ${referenceErr} in ${JSON.stringify(c)}`);
      }
      const wasm = await onBackend('wasm', () => runBatchMatMul(c, a, b));
      const err = relativeError(wasm, reference);
      if (!(err < TOLERANCE)) failures.push(`seed ${seed} case #${i}: relative error ${err} in ${JSON.stringify(c)}`);
    }
    expect(batched).toBeGreaterThan(5);
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('returns zeros for an empty inner dimension and empty results for empty outer ones', async () => {
    await tf.setBackend('wasm');
    const zeroInner = tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4]));
    expect(zeroInner.shape).toEqual([3, 4]);
    expect(Array.from(zeroInner.dataSync())).toEqual(new Array(12).fill(0));
    const noRows = tf.matMul(tf.zeros([2, 0, 5]), tf.ones([2, 5, 3]), false, false);
    expect(noRows.shape).toEqual([2, 0, 3]);
    tf.dispose([zeroInner, noRows]);
  });
});

// ---------------------------------------------------------------------------------------------
// XNNPACK caches the packed right-hand matrix under the tensor id and ignores the shape on a
// cache hit. A reshape shares the id, so the same bytes as b under a second [K, N] split must
// not reuse the first packing.
describe('XNNPACK packing cache', () => {
  it('does not reuse a packing when the same bytes come back as b under another split', async () => {
    const random = new SeededRandom(SEED + 50);
    const bValues = random.floats(6 * 8);
    const a1 = random.floats(3 * 6);
    const a2 = random.floats(5 * 12);
    const run = () => {
      const b = tf.tensor2d(bValues, [6, 8]);
      const first = tf.matMul(tf.tensor2d(a1, [3, 6]), b);
      const second = tf.matMul(tf.tensor2d(a2, [5, 12]), tf.reshape(b, [12, 4]));
      const again = tf.matMul(tf.tensor2d(a1, [3, 6]), b);
      return [first, second, again].map((t) => t.dataSync() as Float32Array);
    };
    const expected = await onBackend('cpu', run);
    const actual = await onBackend('wasm', run);
    actual.forEach((values, i) => expect(relativeError(values, expected[i]!), `product ${i}`).toBeLessThan(TOLERANCE));
  });
});

// ---------------------------------------------------------------------------------------------
type Activation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu' | 'prelu';
const ACTIVATIONS: readonly Activation[] = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'];

describe('_FusedMatMul on wasm vs cpu (transposes, batches, bias shapes, every activation)', () => {
  it(`agrees within ${TOLERANCE} relative error`, async () => {
    const random = new SeededRandom(SEED + 100);
    const failures: string[] = [];
    for (let i = 0; i < 40; i++) {
      const [transposeA, transposeB] = random.pick(TRANSPOSES);
      const c = randomMatMulCase(random, transposeA, transposeB);
      if (c.crossBroadcast) continue; // cpu is no reference there (see BatchMatMul above)
      const n = c.transposeB ? c.bShape.at(-2)! : c.bShape.at(-1)!;
      const biasShape = random.pick([undefined, [n], [1], [1, n]]);
      const activation = random.pick(ACTIVATIONS);
      const a = random.floats(sizeOf(c.aShape));
      const b = random.floats(sizeOf(c.bShape));
      const bias = biasShape === undefined ? undefined : random.floats(sizeOf(biasShape));
      const alpha = random.floats(n);
      const run = () => {
        const out = tf.fused.matMul({
          a: tf.tensor(a, c.aShape),
          b: tf.tensor(b, c.bShape),
          transposeA,
          transposeB,
          ...(bias === undefined ? {} : { bias: tf.tensor(bias, biasShape) }),
          activation,
          ...(activation === 'prelu' ? { preluActivationWeights: tf.tensor1d(alpha) } : {}),
          ...(activation === 'leakyrelu' ? { leakyreluAlpha: 0.15 } : {}),
        });
        return out.dataSync() as Float32Array;
      };
      const expected = await onBackend('cpu', run);
      const actual = await onBackend('wasm', run);
      const err = relativeError(actual, expected);
      if (!(err < TOLERANCE)) failures.push(`seed ${SEED + 100} case #${i}: relative error ${err} with ${activation}, bias ${JSON.stringify(biasShape)} in ${JSON.stringify(c)}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// One Adam step of a small MLP (relu layers train unfused: BatchMatMul with transpose flags in
// the backward pass; the linear last layer uses _FusedMatMul) from identical weights and data.
describe('MLP training step', () => {
  const BATCH = 16;
  const FEATURES = 40;
  const CLASSES = 7;

  function buildModel(): tf.LayersModel {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [FEATURES], units: 33, activation: 'relu' }),
        tf.layers.dense({ units: 50, activation: 'relu' }),
        tf.layers.dense({ units: CLASSES }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.5), loss: tf.losses.softmaxCrossEntropy });
    return model;
  }

  async function oneStep(initial: Float32Array[], x: Float32Array, labels: Float32Array): Promise<Float32Array[]> {
    const model = buildModel();
    model.setWeights(model.getWeights().map((w, i) => tf.tensor(initial[i]!, w.shape)));
    const xs = tf.tensor2d(x, [BATCH, FEATURES]);
    const ys = tf.tensor2d(labels, [BATCH, CLASSES]);
    await model.trainOnBatch(xs, ys);
    const after = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
    tf.dispose([xs, ys]);
    model.dispose();
    return after;
  }

  it(`moves every weight as on cpu (step within ${TOLERANCE} relative)`, async () => {
    const random = new SeededRandom(SEED + 200);
    const initial = await onBackend('cpu', () => buildModel().getWeights().map((w) => random.floats(sizeOf(w.shape)).map((v) => v * 0.5)));
    const x = random.floats(BATCH * FEATURES);
    const labels = new Float32Array(BATCH * CLASSES);
    for (let i = 0; i < BATCH; i++) labels[i * CLASSES + random.int(0, CLASSES - 1)] = 1;
    const cpuAfter = await (await onBackend('cpu', () => oneStep(initial, x, labels)));
    const wasmAfter = await (await onBackend('wasm', () => oneStep(initial, x, labels)));
    const report: string[] = [];
    cpuAfter.forEach((cpuWeights, i) => {
      const cpuDelta = cpuWeights.map((v, k) => v - initial[i]![k]!);
      const wasmDelta = wasmAfter[i]!.map((v, k) => v - initial[i]![k]!);
      expect(Math.max(...cpuDelta.map(Math.abs)), `weight ${i} must move`).toBeGreaterThan(0);
      const err = relativeError(wasmDelta, cpuDelta);
      if (!(err < TOLERANCE)) report.push(`weight ${i}: step error ${err}`);
    });
    expect(report, `seed ${SEED + 200}\n${report.join('\n')}`).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
describe('switching the replacements off', () => {
  const savedEnv = process.env[FAST_KERNELS_ENV];
  afterEach(() => {
    if (savedEnv === undefined) delete process.env[FAST_KERNELS_ENV];
    else process.env[FAST_KERNELS_ENV] = savedEnv;
    unregisterWasmTrainingKernels();
    registerWasmTrainingKernels();
  });

  function stockKernels(): Record<string, tf.KernelConfig | undefined> {
    unregisterWasmTrainingKernels();
    return Object.fromEntries(['BatchMatMul', '_FusedMatMul', 'Conv2DBackpropInput', 'MaxPoolGrad', 'Sum', 'Identity', 'Cast'].map((name) => [name, tf.getKernel(name, 'wasm')]));
  }

  it('fastMatMul: false keeps the stock matmul kernels and puts them back', () => {
    const stock = stockKernels();
    expect(registerWasmTrainingKernels()).toEqual(expect.arrayContaining(['BatchMatMul', '_FusedMatMul']));
    expect(tf.getKernel('BatchMatMul', 'wasm')).not.toBe(stock['BatchMatMul']);
    registerWasmTrainingKernels({ fastMatMul: false });
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(stock['BatchMatMul']);
    expect(tf.getKernel('_FusedMatMul', 'wasm')).toBe(stock['_FusedMatMul']);
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).not.toBe(stock['Conv2DBackpropInput']);
  });

  it(`reads ${FAST_KERNELS_ENV} as an on/off switch and rejects anything else`, () => {
    expect(fastKernelsByDefault({})).toBe(true);
    for (const on of ['1', 'true', 'YES', ' on ', '']) expect(fastKernelsByDefault({ [FAST_KERNELS_ENV]: on }), on).toBe(true);
    for (const off of ['0', 'false', 'No', 'off']) expect(fastKernelsByDefault({ [FAST_KERNELS_ENV]: off }), off).toBe(false);
    expect(() => fastKernelsByDefault({ [FAST_KERNELS_ENV]: 'fast' })).toThrow(/RINGPIPE_FAST_KERNELS="fast": expected 1\/0/);
  });

  it(`${FAST_KERNELS_ENV}=0 turns every replacement off, but still adds the missing kernels`, () => {
    const stock = stockKernels();
    process.env[FAST_KERNELS_ENV] = '0';
    const added = registerWasmTrainingKernels();
    expect(added).toContain('Conv2DBackpropFilter');
    for (const [name, config] of Object.entries(stock)) expect(tf.getKernel(name, 'wasm'), name).toBe(config);
    // An explicit option still wins over the environment.
    expect(registerWasmTrainingKernels({ fastMatMul: true })).toEqual(['BatchMatMul', '_FusedMatMul']);
  });
});
