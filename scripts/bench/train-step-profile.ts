/**
 * Where a training step's time goes, kernel by kernel, on one tensor backend.
 *
 *   npx tsx scripts/bench/train-step-profile.ts [--model mlp|cnn] [--backend wasm] [--batch 128]
 *                                               [--steps 5] [--no-fast-kernels] [--clock cpu|wall]
 *
 * Runs the same step as `npm run bench:train` (zoo model, Adam, real MNIST batches) under
 * tf.profile, after 3 warm-up steps, and prints a markdown table: per kernel (and per input
 * shapes for the heavy ones) the mean ms per step, calls per step and share of the step.
 * `--no-fast-kernels` sets RINGPIPE_FAST_KERNELS=0 first, so the stock wasm kernels run
 * (only the kernels wasm lacks are added).
 *
 * `--clock cpu` (the default) times each kernel by the process's CPU time instead of the wall
 * clock: kernels on wasm run synchronously on this one thread, so CPU time is their cost
 * without the time the OS gave to other processes, which keeps profiles of a busy machine
 * comparable.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { EpochBatches } from '../../shared/data/epoch-batches.js';
import { loadMnist } from '../../shared/data/mnist.js';
import { isBackendFlag } from '../../shared/engine/backend-candidates.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { buildZooModel } from '../../shared/models/zoo.js';
import { outputKindOf } from '../../peer/trainer/loss.js';
import { createOptimizer } from '../../peer/trainer/optimizer.js';
import { trainStep, type StepContext } from '../../peer/trainer/train-step.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    model: { type: 'string', default: 'mlp' },
    batch: { type: 'string', default: '128' },
    steps: { type: 'string', default: '5' },
    'no-fast-kernels': { type: 'boolean', default: false },
    clock: { type: 'string', default: 'cpu' },
  },
});
if (values['no-fast-kernels']) process.env['RINGPIPE_FAST_KERNELS'] = '0';
if (!isBackendFlag(values.backend)) throw new Error(`unknown backend ${values.backend}`);
const selection = await selectBackend({ force: values.backend });
const batchSize = Number(values.batch);
const steps = Number(values.steps);
const inputShape = [28, 28, 1];
const model = buildZooModel(values.model, { inputShape, numClasses: 10, seed: 1 });
const ctx: StepContext = { model, optimizer: createOptimizer({ optimizer: 'adam', learningRate: 1e-3 }), inputShape, numClasses: 10, outputKind: outputKindOf(model) };
const batches = new EpochBatches(await loadMnist('train'), { batchSize, seed: 1 });

for (let i = 0; i < 3; i++) await trainStep(ctx, batches.next());

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};
if (values.clock === 'cpu') {
  const backend = tf.backend();
  backend.time = async (f: () => void) => {
    const start = process.cpuUsage();
    f();
    return { kernelMs: cpuMs(start) };
  };
} else if (values.clock !== 'wall') {
  throw new Error(`--clock must be cpu or wall, got ${values.clock}`);
}

/** Matmuls and convs are told apart by shape (they are few and heavy); the rest by name. */
const HEAVY = /MatMul|Conv|Pool|Sum/;
const keyOf = (k: { name: string; inputShapes: (number[] | null)[] }): string =>
  HEAVY.test(k.name) ? `${k.name} ${k.inputShapes.map((s) => (s ? `[${s.join('×')}]` : '–')).join(' ')}` : k.name;

const totals = new Map<string, { ms: number; calls: number }>();
let stepMs = 0;
let stepCpuMs = 0;
for (let i = 0; i < steps; i++) {
  const batch = batches.next();
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const profile = await tf.profile(async () => {
    await trainStep(ctx, batch);
  });
  stepMs += performance.now() - start;
  stepCpuMs += cpuMs(cpuStart);
  for (const kernel of profile.kernels) {
    const entry = totals.get(keyOf(kernel)) ?? { ms: 0, calls: 0 };
    entry.ms += Number(await kernel.kernelTimeMs);
    entry.calls += 1;
    totals.set(keyOf(kernel), entry);
  }
}

const kernelMs = [...totals.values()].reduce((sum, e) => sum + e.ms, 0);
const rows = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
const lines = [
  `${values.model} on ${selection.flag}, batch ${batchSize}, ${steps} profiled steps, fast kernels ${values['no-fast-kernels'] ? 'off' : 'on'}, ${values.clock} clock, load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores`,
  `step (profiled): ${(stepMs / steps).toFixed(1)} ms wall, ${(stepCpuMs / steps).toFixed(1)} ms CPU; kernels ${(kernelMs / steps).toFixed(1)} ms ${values.clock}`,
  '',
  '| kernel (input shapes) | ms / step | calls / step | share |',
  '|---|---:|---:|---:|',
  ...rows.map(([key, e]) => `| ${key} | ${(e.ms / steps).toFixed(2)} | ${e.calls / steps} | ${((100 * e.ms) / kernelMs).toFixed(1)}% |`),
];
process.stdout.write(`${lines.join('\n')}\n`);
