/**
 * One engine's measurements for `npm run bench:train`, in its own process because a tensor
 * backend is process-wide: trains `--model` on `--backend` on real MNIST batches.
 *
 * One-shot: warm-up + `--runs` timed runs of `--steps` steps, then one JSON line with the
 * samples/s (and CPU ms per step) of each run. With `--serve`: warm-up, a `{"ready":true}` line,
 * then one timed run per `run` line read from stdin, each answered by a
 * `{"samplesPerSecond":…,"cpuMsPerStep":…}` line, so the
 * parent can interleave the engines run by run (machine load then hits all of them alike).
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
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
    warmup: { type: 'string', default: '3' },
    steps: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    serve: { type: 'boolean', default: false },
  },
});
if (!isBackendFlag(values.backend)) throw new Error(`unknown backend ${values.backend}`);
const selection = await selectBackend({ force: values.backend });
const batchSize = Number(values.batch);
const steps = Number(values.steps);
const train = await loadMnist('train');
const inputShape = [28, 28, 1];
const model = buildZooModel(values.model, { inputShape, numClasses: 10, seed: 1 });
const ctx: StepContext = { model, optimizer: createOptimizer({ optimizer: 'adam', learningRate: 1e-3 }), inputShape, numClasses: 10, outputKind: outputKindOf(model) };
const batches = new EpochBatches(train, { batchSize, seed: 1 });
// Batches are prepared up front so only the training step is timed.
const prepared = Array.from({ length: 16 }, () => batches.next());
let cursor = 0;
const nextBatch = () => prepared[cursor++ % prepared.length]!;

/** Samples/s by the wall clock, and the process's CPU ms per step (which machine load does not stretch). */
async function timedRun(): Promise<{ samplesPerSecond: number; cpuMsPerStep: number }> {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < steps; i++) await trainStep(ctx, nextBatch());
  const cpu = process.cpuUsage(cpuStart);
  return { samplesPerSecond: (steps * batchSize * 1000) / (performance.now() - start), cpuMsPerStep: (cpu.user + cpu.system) / 1000 / steps };
}

for (let i = 0; i < Number(values.warmup); i++) await trainStep(ctx, nextBatch());
const identity = { backend: values.backend, model: values.model, batchSize, replacedKernels: selection.addedKernels };
if (values.serve) {
  process.stdout.write(`${JSON.stringify({ ready: true, ...identity })}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() !== 'run') break;
    process.stdout.write(`${JSON.stringify(await timedRun())}\n`);
  }
} else {
  const runs = [];
  for (let run = 0; run < Number(values.runs); run++) runs.push(await timedRun());
  process.stdout.write(`${JSON.stringify({ ...identity, samplesPerSecond: runs.map((r) => r.samplesPerSecond), cpuMsPerStep: runs.map((r) => r.cpuMsPerStep) })}\n`);
}
