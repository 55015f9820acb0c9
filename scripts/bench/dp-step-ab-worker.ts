/**
 * One rank of `dp-step-ab.ts`: trains the mlp with the data-parallel exchanges taking turns every
 * DP_AB_BLOCK steps in this one process (so the machine's drift hits every mode alike) and reports
 * each mode's step times and CPU per step. Modes: `plain` (one fused buffer after the backward pass),
 * `sharded` (Adam inside the all-reduce), or a bucket size in MiB (the backward pass overlapped).
 */
import * as tf from '@tensorflow/tfjs';
import { joinRingFromLauncher, rankFromEnv, reportToLauncher, runLaunchedRank } from '../../peer/allreduce/launch/join-from-launcher.js';
import { RingCollective } from '../../peer/allreduce/ring-collective.js';
import { PlainReducer } from '../../peer/compression/plain-reducer.js';
import { backwardBuckets } from '../../peer/data-parallel/backward-buckets.js';
import { fusedLayout } from '../../peer/data-parallel/fused-layout.js';
import { createFlatGradientExchange } from '../../peer/data-parallel/gradient-exchange.js';
import { GradientFusion } from '../../peer/data-parallel/gradient-fusion.js';
import { overlappedStep } from '../../peer/data-parallel/overlapped-step.js';
import { createShardedAdamExchange } from '../../peer/data-parallel/sharded-adam-exchange.js';
import { broadcastWeights } from '../../peer/data-parallel/weight-sync.js';
import { outputKindOf } from '../../peer/trainer/loss.js';
import { trainStep, type StepContext } from '../../peer/trainer/train-step.js';
import type { Batch } from '../../shared/data/batch.js';
import { loadMnist } from '../../shared/data/mnist.js';
import { trainingBatches } from '../../shared/data/training-batches.js';
import { FusedAdam } from '../../shared/engine/fused-adam.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { buildZooModel } from '../../shared/models/zoo.js';

export interface ModeStats {
  mode: string;
  steps: number;
  meanMs: number;
  medianMs: number;
  p90Ms: number;
  cpuMeanMs: number;
}

runLaunchedRank(async () => {
  const { rank, worldSize } = rankFromEnv();
  await selectBackend({ force: 'wasm' });
  const train = await loadMnist('train');
  const joined = await joinRingFromLauncher({ cluster: 'dp-ab' }, { timeoutMs: 60_000, dataPlane: 'tcp' });
  const ring = new RingCollective(joined.membership, { timeoutMs: 120_000 });
  const globalBatch = Number(process.env.DP_AB_BATCH ?? 512);
  const inputShape = [28, 28, 1];
  const model = buildZooModel('mlp', { inputShape, numClasses: 10, seed: 1 });
  const optimizer = new FusedAdam(0.002);
  const ctx: StepContext & { optimizer: FusedAdam } = { model, optimizer, inputShape, numClasses: 10, outputKind: outputKindOf(model) };
  await broadcastWeights(model, ring);
  const layout = fusedLayout(model.trainableWeights.map((w) => ({ name: (w.read() as tf.Variable).name, shape: w.read().shape })));
  const fusion = new GradientFusion(layout);
  const reducer = new PlainReducer();
  const share = 1 / worldSize;
  const plain = { flat: createFlatGradientExchange({ ring, fusion, reducer, share: () => share, weighted: true }) };
  const sharded = createShardedAdamExchange({ ring, fusion, optimizer });
  const modes = (process.env.DP_AB_MODES ?? 'plain,sharded,0.5,1').split(',');
  const steppers = modes.map((mode): ((batch: Batch) => Promise<unknown>) => {
    if (mode === 'plain') return (batch) => trainStep(ctx, batch, plain, { lossScale: share });
    if (mode === 'sharded') return (batch) => trainStep(ctx, batch, sharded, { lossScale: share });
    const buckets = backwardBuckets(layout, Number(mode) * 1024 * 1024);
    return (batch) => overlappedStep(ctx, batch, { ring, fusion, reducer, buckets }, share);
  });
  const batches = trainingBatches(train, { batchSize: globalBatch, seed: 42, split: { rank, world: worldSize } }).iterate();
  const block = Number(process.env.DP_AB_BLOCK ?? 10);
  const steps = Number(process.env.DP_AB_STEPS ?? 480);
  const wall: number[][] = modes.map(() => []);
  const cpu: number[][] = modes.map(() => []);
  try {
    for (let s = 0; s < steps; s++) {
      const mode = Math.floor(s / block) % modes.length;
      const started = performance.now();
      const cpuStart = process.cpuUsage();
      await steppers[mode]!(await batches.next());
      const used = process.cpuUsage(cpuStart);
      // Leave out the warm-up and each block's first step (the switch).
      if (s >= 20 && s % block !== 0) {
        wall[mode]!.push(performance.now() - started);
        cpu[mode]!.push((used.user + used.system) / 1000);
      }
    }
  } finally {
    await batches.close();
  }
  const stats = modes.map((mode, i): ModeStats => {
    const sorted = [...wall[i]!].sort((a, b) => a - b);
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
    return { mode, steps: sorted.length, meanMs: mean(sorted), medianMs: sorted[Math.floor(sorted.length / 2)]!, p90Ms: sorted[Math.floor(sorted.length * 0.9)]!, cpuMeanMs: mean(cpu[i]!) };
  });
  reportToLauncher('ab', { rank, stats });
  await joined.close();
});
