/**
 * Where a training step's time goes, kernel by kernel, on one tensor backend.
 *
 *   npx tsx scripts/bench/train-step-profile.ts [--model mlp|cnn] [--backend wasm] [--batch 128]
 *                                               [--steps 5] [--no-fast-kernels | --compare]
 *                                               [--clock cpu|wall] [--fused-adam]
 *
 * Runs the same step as `npm run bench:train` (zoo model, Adam, real MNIST batches) under
 * tf.profile, after 3 warm-up steps, and prints a markdown table: per kernel (and per input
 * shapes for the heavy ones) the mean ms per step and calls per step.
 * `--no-fast-kernels` profiles the stock wasm kernels (RINGPIPE_FAST_KERNELS=0: only the kernels
 * wasm lacks are added). `--compare` (wasm only) profiles both side by side: stock and fast
 * steps alternate in this one process, so machine load hits both columns alike.
 *
 * `--fused-adam` updates with FusedAdam (as the data-parallel trainer does) instead of tf.train.adam
 * (as bench:train does): its update is one pass outside tfjs, so it shows in the step's CPU only.
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
import { FusedAdam } from '../../shared/engine/fused-adam.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { allReplacements, registerWasmTrainingKernels } from '../../shared/engine/wasm-kernels/index.js';
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
    compare: { type: 'boolean', default: false },
    clock: { type: 'string', default: 'cpu' },
    'fused-adam': { type: 'boolean', default: false },
  },
});
if (values['no-fast-kernels']) process.env['RINGPIPE_FAST_KERNELS'] = '0';
if (!isBackendFlag(values.backend)) throw new Error(`unknown backend ${values.backend}`);
if (values.compare && values.backend !== 'wasm') throw new Error('--compare needs --backend wasm');
if (values.clock !== 'cpu' && values.clock !== 'wall') throw new Error(`--clock must be cpu or wall, got ${values.clock}`);
const selection = await selectBackend({ force: values.backend });
const batchSize = Number(values.batch);
const steps = Number(values.steps);
const inputShape = [28, 28, 1];
const model = buildZooModel(values.model, { inputShape, numClasses: 10, seed: 1 });
const optimizer = values['fused-adam'] ? new FusedAdam(1e-3) : createOptimizer({ optimizer: 'adam', learningRate: 1e-3 });
const ctx: StepContext = { model, optimizer, inputShape, numClasses: 10, outputKind: outputKindOf(model) };
const batches = new EpochBatches(await loadMnist('train'), { batchSize, seed: 1 });

type Mode = 'stock' | 'fast';
const modes: Mode[] = values.compare ? ['stock', 'fast'] : [values['no-fast-kernels'] ? 'stock' : 'fast'];
const useMode = (mode: Mode): void => {
  if (values.compare) registerWasmTrainingKernels(allReplacements(mode === 'fast'));
};

// Warm-up in every mode: XNNPACK operators, heap growth, JIT.
for (const mode of modes) {
  useMode(mode);
  for (let i = 0; i < 3; i++) await trainStep(ctx, batches.next());
}

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
}

/** Matmuls, convolutions, pooling and sums are told apart by shape (they are few and heavy); the rest by name. */
const HEAVY = /MatMul|Conv|Pool|Sum/;
const keyOf = (k: { name: string; inputShapes: (number[] | null)[] }): string =>
  HEAVY.test(k.name) ? `${k.name} ${k.inputShapes.map((s) => (s ? `[${s.join('×')}]` : '–')).join(' ')}` : k.name;

interface Totals {
  kernels: Map<string, { ms: number; calls: number }>;
  stepWallMs: number;
  stepCpuMs: number;
}
const totals = new Map<Mode, Totals>(modes.map((mode) => [mode, { kernels: new Map(), stepWallMs: 0, stepCpuMs: 0 }]));
for (let i = 0; i < steps; i++) {
  for (const mode of i % 2 ? [...modes].reverse() : modes) {
    useMode(mode);
    const batch = batches.next();
    const total = totals.get(mode)!;
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    const profile = await tf.profile(async () => {
      await trainStep(ctx, batch);
    });
    total.stepWallMs += performance.now() - start;
    total.stepCpuMs += cpuMs(cpuStart);
    for (const kernel of profile.kernels) {
      const entry = total.kernels.get(keyOf(kernel)) ?? { ms: 0, calls: 0 };
      entry.ms += Number(await kernel.kernelTimeMs);
      entry.calls += 1;
      total.kernels.set(keyOf(kernel), entry);
    }
  }
}

const perStep = (ms: number): string => (ms / steps).toFixed(1);
const kernelSum = (t: Totals): number => [...t.kernels.values()].reduce((sum, e) => sum + e.ms, 0);
const names = [...new Set(modes.flatMap((mode) => [...totals.get(mode)!.kernels.keys()]))];
const largest = (name: string): number => Math.max(...modes.map((mode) => totals.get(mode)!.kernels.get(name)?.ms ?? 0));
names.sort((a, b) => largest(b) - largest(a));
const label = (mode: Mode): string => (mode === 'fast' ? 'fast kernels' : 'stock kernels');

const lines = [
  `${values.model} on ${selection.flag}, batch ${batchSize}, ${steps} profiled steps${modes.length > 1 ? ' per column, alternating' : ''}, ${values.clock} clock, load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores`,
  ...modes.map((mode) => {
    const t = totals.get(mode)!;
    return `${label(mode)}: step (profiled) ${perStep(t.stepWallMs)} ms wall, ${perStep(t.stepCpuMs)} ms CPU; kernels ${perStep(kernelSum(t))} ms ${values.clock}`;
  }),
  '',
  `| kernel (input shapes) | calls / step | ${modes.map((mode) => `${label(mode)}: ms / step`).join(' | ')} |`,
  `|---|---:|${modes.map(() => '---:').join('|')}|`,
  ...names.map((name) => {
    const calls = modes.map((mode) => totals.get(mode)!.kernels.get(name)?.calls).find((c) => c !== undefined)! / steps;
    const cells = modes.map((mode) => {
      const entry = totals.get(mode)!.kernels.get(name);
      return entry ? perStep(entry.ms) : '–';
    });
    return `| ${name} | ${calls} | ${cells.join(' | ')} |`;
  }),
  `| all kernels | | ${modes.map((mode) => perStep(kernelSum(totals.get(mode)!))).join(' | ')} |`,
];
process.stdout.write(`${lines.join('\n')}\n`);
