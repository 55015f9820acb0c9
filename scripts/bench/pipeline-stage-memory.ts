/**
 * What a pipeline stage peer holds against the whole model: each configuration in a fresh process
 * (RSS is per process), on the peers' backend, after one training update (so optimizer slots exist).
 *
 *   npx tsx scripts/bench/pipeline-stage-memory.ts [--model mlp-large] [--stages 2] [--optimizer adam]
 *
 * "whole" is what every pipeline peer built before stages were built alone: the data-parallel
 * TrainingState (whole model, primed optimizer, flat copy of the initial state).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { parseClusterJob } from '../../coordinator/job/cluster-job.js';
import { stageModelSource } from '../../peer/session/pipeline/stage-model-source.js';
import { StageHolder } from '../../peer/session/pipeline/stage-holder.js';
import { TrainingState } from '../../peer/session/training-state.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { planPipeline } from '../../coordinator/job/pipeline-plan.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const model = args.get('model') ?? 'mlp-large';
const stages = Number(args.get('stages') ?? 2);
const optimizer = args.get('optimizer') ?? 'adam';
const MNIST = { name: 'mnist', inputShape: [28, 28, 1], numClasses: 10 };

interface Measured {
  what: string;
  parameters: number;
  tensors: number;
  tensorBytes: number;
  rssBytes: number;
}

async function measure(what: string, balance: number[]): Promise<Measured> {
  const job = parseClusterJob({ mode: 'pipeline', model, optimizer, pipeline: { stages, balance } });
  await selectBackend({});
  const baseline = tf.memory();
  let parameters: number;
  if (what === 'whole') {
    const state = await TrainingState.create(job, MNIST);
    parameters = state.model.countParams();
  } else {
    const holder = await StageHolder.create('bench', balance, Number(what.slice('stage '.length)), await stageModelSource(job, MNIST), job);
    parameters = holder.module.parameterCount;
    const grads: tf.NamedTensorMap = {};
    for (const variable of holder.module.trainableVariables) grads[variable.name] = tf.zerosLike(variable);
    holder.optimizer.applyGradients(grads);
    tf.dispose(grads);
  }
  const after = tf.memory();
  global.gc?.();
  return { what: `${what} [${balance.join(', ')}]`, parameters, tensors: after.numTensors - baseline.numTensors, tensorBytes: after.numBytes - baseline.numBytes, rssBytes: process.memoryUsage.rss() };
}

const mode = args.get('measure');
if (mode) {
  process.stdout.write(`${JSON.stringify(await measure(mode, args.get('balance')!.split(',').map(Number)))}\n`);
} else {
  // The split the coordinator would choose (decided here: the children build nothing else).
  const { balance } = await planPipeline(parseClusterJob({ mode: 'pipeline', model, optimizer, pipeline: { stages } }));
  const self = fileURLToPath(import.meta.url);
  const rows: Measured[] = [];
  for (const what of ['whole', ...Array.from({ length: stages }, (_, i) => `stage ${i}`)]) {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', self, '--model', model, '--stages', String(stages), '--optimizer', optimizer, '--balance', balance.join(','), '--measure', what], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    rows.push(JSON.parse(out.trim().split('\n').at(-1)!) as Measured);
  }
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  console.log(`model ${model}, ${stages} stages, optimizer ${optimizer}, the peers' default backend, each row a fresh process`);
  console.log('| held by | parameters | tensors | tf.memory() MiB | RSS MiB |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.what} | ${r.parameters} | ${r.tensors} | ${mib(r.tensorBytes)} | ${mib(r.rssBytes)} |`);
}
