// Micro-benchmark of the conv training kernels on the tfjs wasm backend.
//
//   npx tsx scripts/bench/conv-kernels.ts [--rounds 7] [--batch 128] [--cpu-reference]
//
// Workload: the conv part of the MNIST CNN, forward + backward wrt both filters:
//   x[B,28,28,1] → conv 3x3x32 valid → maxPool 2 → conv 3x3x64 valid → maxPool 2 → Σ(r ⊙ ·)
// The two Conv2DBackpropInput variants (stock wasm loop vs ours: at stride 1 a flipped-filter
// XNNPACK convolution, otherwise col2im + XNNPACK matmul) run alternately in one process, round
// by round, so machine load hits both alike; we report medians. The other replacement kernels
// stay on in both columns (per-kernel figures of a whole training step, stock vs fast:
// scripts/bench/train-step-profile.ts --compare). Per-kernel times come from tf.profile (wall clock per kernel on wasm).
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels, unregisterWasmTrainingKernels } from '../../shared/engine/wasm-kernels/index.js';
import { median } from './median.js';

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    batch: { type: 'string', default: '128' },
    'cpu-reference': { type: 'boolean', default: false },
  },
});
const rounds = Number(flags.rounds);
const batch = Number(flags.batch);

type Mode = 'stock' | 'fast';
const MODES: Mode[] = ['stock', 'fast'];

function useMode(mode: Mode): void {
  unregisterWasmTrainingKernels();
  registerWasmTrainingKernels({ fastBackpropInput: mode === 'fast' });
}

interface Workload {
  x: tf.Tensor4D;
  w1: tf.Tensor4D;
  w2: tf.Tensor4D;
  r: tf.Tensor4D;
}

function makeWorkload(): Workload {
  const x = tf.randomUniform([batch, 28, 28, 1]) as tf.Tensor4D;
  const w1 = tf.randomNormal([3, 3, 1, 32], 0, 0.3) as tf.Tensor4D;
  const w2 = tf.randomNormal([3, 3, 32, 64], 0, 0.1) as tf.Tensor4D;
  const r = tf.randomNormal([batch, 5, 5, 64]) as tf.Tensor4D;
  return { x, w1, w2, r };
}

/** One forward + backward step; returns the two filter gradients (caller disposes). */
function step({ x, w1, w2, r }: Workload): tf.Tensor[] {
  const lossOf = (a: tf.Tensor, b: tf.Tensor): tf.Scalar => {
    const h1 = tf.maxPool(tf.conv2d(x, a as tf.Tensor4D, 1, 'valid'), 2, 2, 'valid');
    const h2 = tf.maxPool(tf.conv2d(h1, b as tf.Tensor4D, 1, 'valid'), 2, 2, 'valid');
    return tf.sum(tf.mul(h2, r));
  };
  return tf.grads(lossOf)([w1, w2]);
}

/** Conv kernels are listed per layer (by output shape); the small fry by name only. */
function kernelKey(name: string, outputShapes: number[][]): string {
  return name.startsWith('Conv2D') || name.startsWith('Depthwise') ? `${name} [${outputShapes[0]?.join(',')}]` : name;
}

async function measureRound(work: Workload): Promise<{ stepMs: number; kernelMs: Map<string, number> }> {
  const t0 = performance.now();
  const grads = step(work);
  for (const g of grads) g.dataSync();
  const stepMs = performance.now() - t0;
  grads.forEach((g) => g.dispose());

  const kernelMs = new Map<string, number>();
  const profile = await tf.profile(() => {
    const gs = step(work);
    for (const g of gs) g.dataSync();
    gs.forEach((g) => g.dispose());
  });
  for (const k of profile.kernels) {
    const key = kernelKey(k.name, k.outputShapes);
    kernelMs.set(key, (kernelMs.get(key) ?? 0) + (k.kernelTimeMs as number));
  }
  return { stepMs, kernelMs };
}

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  const work = makeWorkload();
  const steps: Record<Mode, number[]> = { stock: [], fast: [] };
  const kernels: Record<Mode, Map<string, number[]>> = { stock: new Map(), fast: new Map() };

  for (const mode of MODES) {
    useMode(mode);
    for (const g of step(work)) g.dispose(); // warm-up: XNNPACK operator creation, heap growth
  }
  for (let round = 0; round < rounds; round++) {
    for (const mode of round % 2 ? [...MODES].reverse() : MODES) {
      useMode(mode);
      const { stepMs, kernelMs } = await measureRound(work);
      steps[mode].push(stepMs);
      for (const [name, ms] of kernelMs) {
        const list = kernels[mode].get(name) ?? [];
        list.push(ms);
        kernels[mode].set(name, list);
      }
    }
  }

  // Correctness check between the two variants in the same run.
  useMode('stock');
  const stockGrads = step(work).map((g) => g.dataSync().slice());
  useMode('fast');
  const fastGrads = step(work).map((g) => g.dataSync().slice());
  const relErr = Math.max(...stockGrads.map((s, i) => relativeError(fastGrads[i]!, s)));

  console.log(`wasm backend, batch ${batch}, ${rounds} rounds, median ms (variants alternated per round)`);
  console.log(`${'kernel [output shape]'.padEnd(40)} ${'stock BackpropInput'.padStart(20)} ${'fast BackpropInput'.padStart(20)}`);
  const names = [...new Set([...kernels.stock.keys(), ...kernels.fast.keys()])].sort();
  for (const name of names) {
    const cell = (mode: Mode): string => {
      const list = kernels[mode].get(name);
      return (list ? median(list).toFixed(1) : '-').padStart(20);
    };
    console.log(`${name.padEnd(40)} ${cell('stock')} ${cell('fast')}`);
  }
  const stepCell = (mode: Mode): string => median(steps[mode]).toFixed(1).padStart(20);
  const rateCell = (mode: Mode): string => ((batch * 1000) / median(steps[mode])).toFixed(0).padStart(20);
  console.log(`${'step (unprofiled)'.padEnd(40)} ${stepCell('stock')} ${stepCell('fast')}`);
  console.log(`${'samples/s (conv part)'.padEnd(40)} ${rateCell('stock')} ${rateCell('fast')}`);
  console.log(`max relative difference of the filter gradients, fast vs stock: ${relErr.toExponential(2)}`);

  await depthwiseSection();
  if (flags['cpu-reference']) await cpuReference(work);
}

/** A MobileNet-like depthwise 3x3 block, forward + backward wrt input and filter (loops in JS). */
async function depthwiseSection(): Promise<void> {
  useMode('fast');
  const shapes: { x: [number, number, number, number]; stride: 1 | 2 }[] = [
    { x: [32, 28, 28, 32], stride: 1 },
    { x: [32, 28, 28, 32], stride: 2 },
  ];
  console.log(`depthwise 3x3 'same', channel multiplier 1, median of ${rounds} rounds (ms):`);
  for (const { x: xShape, stride } of shapes) {
    const x = tf.randomNormal(xShape) as tf.Tensor4D;
    const filter = tf.randomNormal([3, 3, xShape[3], 1]) as tf.Tensor4D;
    const lossOf = (xv: tf.Tensor, fv: tf.Tensor): tf.Scalar => tf.sum(tf.square(tf.depthwiseConv2d(xv as tf.Tensor4D, fv as tf.Tensor4D, stride, 'same')));
    const perKernel = new Map<string, number[]>();
    for (let round = 0; round <= rounds; round++) {
      const profile = await tf.profile(() => {
        const gs = tf.grads(lossOf)([x, filter]);
        for (const g of gs) g.dataSync();
        tf.dispose(gs);
      });
      if (round === 0) continue; // warm-up
      for (const k of profile.kernels) {
        if (!k.name.startsWith('Depthwise')) continue;
        const list = perKernel.get(k.name) ?? [];
        list.push(k.kernelTimeMs as number);
        perKernel.set(k.name, list);
      }
    }
    const cells = [...perKernel].map(([name, list]) => `${name} ${median(list).toFixed(1)}`);
    console.log(`  x [${xShape.join(',')}] stride ${stride}: ${cells.join(' | ')}`);
    tf.dispose([x, filter]);
  }
}

function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxDiff / maxRef;
}

/** What the pure-JS cpu backend takes for the same kernels (one profiled step). */
async function cpuReference(work: Workload): Promise<void> {
  const data = Object.fromEntries(Object.entries(work).map(([k, t]) => [k, { values: t.dataSync().slice(), shape: t.shape }]));
  await tf.setBackend('cpu');
  const cpuWork = Object.fromEntries(Object.entries(data).map(([k, d]) => [k, tf.tensor(d.values, d.shape)])) as unknown as Workload;
  const profile = await tf.profile(() => {
    const gs = step(cpuWork);
    for (const g of gs) g.dataSync();
  });
  const totals = new Map<string, number>();
  for (const k of profile.kernels) {
    const key = kernelKey(k.name, k.outputShapes);
    totals.set(key, (totals.get(key) ?? 0) + (k.kernelTimeMs as number));
  }
  console.log('cpu backend reference, one step:');
  for (const [name, ms] of [...totals].sort()) console.log(`${name.padEnd(40)} ${ms.toFixed(1).padStart(20)}`);
}

await main();
