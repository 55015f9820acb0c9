/**
 * One replica of a data-parallel run started by a launcher (scripts/bench/dp-time-to-accuracy.ts):
 * joins the ring, trains with trainDataParallel and reports every step, every evaluation and the
 * result to the launcher. Config in RINGPIPE_DP_CONFIG (JSON).
 */
import { joinRingFromLauncher, rankFromEnv, reportToLauncher, runLaunchedRank } from '../../peer/allreduce/launch/join-from-launcher.js';
import { RingCollective } from '../../peer/allreduce/ring-collective.js';
import type { DataPlane } from '../../peer/allreduce/ring-setup.js';
import type { Compression } from '../../peer/compression/create-reducer.js';
import { trainDataParallel } from '../../peer/data-parallel/dp-trainer.js';
import { loadMnist } from '../../shared/data/mnist.js';
import { describeSelection, selectBackend } from '../../shared/engine/select-backend.js';
import { parseTrainingJob, type TrainingJobInput } from '../../shared/job/schema.js';
import { createLogger } from '../../shared/log/logger.js';
import { stepBreakdown } from './dp-time-to-accuracy.js';

export interface DpWorkerConfig {
  job: TrainingJobInput;
  compression: Compression;
  dataPlane: DataPlane;
  evalEvery: number;
  targetAccuracy?: number;
  hashEvery: number;
  /** Bucket size of the gradient exchange (trainDataParallel's bucketBytes); default the trainer's. */
  bucketBytes?: number;
  /** true: all-reduce bucket by bucket during the backward pass (trainDataParallel's overlapBackward). */
  overlapBackward?: boolean;
  /** true: Adam inside the all-reduce, each rank on its segment (trainDataParallel's shardedUpdate). */
  shardedUpdate?: boolean;
}

async function main(): Promise<void> {
  const log = createLogger('dp');
  const config = JSON.parse(process.env.RINGPIPE_DP_CONFIG ?? '') as DpWorkerConfig;
  const job = parseTrainingJob(config.job, 'RINGPIPE_DP_CONFIG job');
  const { rank, worldSize } = rankFromEnv();
  const selection = await selectBackend(job.backend === 'auto' ? {} : { force: job.backend });
  log.debug(describeSelection(selection), `tensor backend: ${selection.flag}`);
  const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
  const ring = await joinRingFromLauncher({ cluster: 'dp' }, { timeoutMs: 60_000, dataPlane: config.dataPlane });
  const collective = new RingCollective(ring.membership, { timeoutMs: 120_000 });
  // CPU time of training steps only (all threads): from step 2 on (step 1 compiles kernels), with the
  // CPU of evaluations and replica checks between steps left out. On a machine shared with other
  // work, CPU per step says what a step costs; wall time says how much of the cores we got.
  let mark: NodeJS.CpuUsage | undefined;
  let trainCpuMs = 0;
  let cpuSteps = 0;
  // This rank's own step breakdown (rank 0 reports every step; the others only this summary).
  const perStep: { computeMs: number; commMs: number; dataWaitMs: number }[] = [];
  const cpuSince = (from: NodeJS.CpuUsage): number => {
    const delta = process.cpuUsage(from);
    return (delta.user + delta.system) / 1000;
  };
  const result = await trainDataParallel(job, {
    ring: collective,
    data: { train, test },
    compression: config.compression,
    evalEvery: config.evalEvery,
    hashEvery: config.hashEvery,
    ...(config.bucketBytes !== undefined ? { bucketBytes: config.bucketBytes } : {}),
    ...(config.overlapBackward !== undefined ? { overlapBackward: config.overlapBackward } : {}),
    ...(config.shardedUpdate !== undefined ? { shardedUpdate: config.shardedUpdate } : {}),
    ...(config.targetAccuracy !== undefined ? { targetAccuracy: config.targetAccuracy } : {}),
    onStep: (step) => {
      if (mark) {
        trainCpuMs += cpuSince(mark);
        cpuSteps++;
      }
      mark = process.cpuUsage();
      perStep.push({ computeMs: step.computeMs, commMs: step.commMs, dataWaitMs: step.dataWaitMs });
      if (rank === 0) reportToLauncher('step', step);
    },
    onEval: (evaluation) => {
      mark = process.cpuUsage();
      if (rank === 0) reportToLauncher('eval', evaluation);
    },
  });
  log.debug({ rank, worldSize, ...result }, 'done');
  const steady = stepBreakdown(perStep);
  reportToLauncher('cpu', { rank, trainCpuMsPerStep: trainCpuMs / Math.max(1, cpuSteps), steps: cpuSteps, computeMs: steady.compute, commMs: steady.comm, dataWaitMs: steady.dataWait });
  reportToLauncher('result', { ...result, backend: selection.flag });
  await ring.close();
}

runLaunchedRank(main);
