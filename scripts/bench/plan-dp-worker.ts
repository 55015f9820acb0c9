/**
 * One replica of the data-parallel run that `npm run bench:plan` measures: joins the ring from the
 * launcher, trains `steps` steps with trainDataParallel (no evaluation, no replica hash checks: only
 * the steps the planner predicts) and reports every step's time split to the launcher.
 * Config in RINGPIPE_PLAN_DP (JSON: PlanDpWorkerConfig).
 */
import { isEntryPoint } from '../../shared/cli/command.js';
import { joinRingFromLauncher, rankFromEnv, reportToLauncher, runLaunchedRank } from '../../peer/allreduce/launch/join-from-launcher.js';
import { RingCollective } from '../../peer/allreduce/ring-collective.js';
import { replicasFinished } from '../../peer/pipeline/replicas/replica-gradients.js';
import { trainDataParallel } from '../../peer/data-parallel/dp-trainer.js';
import { loadMnist } from '../../shared/data/mnist.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import type { BackendFlag } from '../../shared/engine/backend-candidates.js';
import { parseTrainingJob } from '../../shared/job/schema.js';

export interface PlanDpWorkerConfig {
  model: string;
  batchSize: number;
  steps: number;
  backend: BackendFlag;
  optimizer: 'adam' | 'sgd' | 'momentum' | 'rmsprop';
}

export const PLAN_DP_ENV = 'RINGPIPE_PLAN_DP';

async function main(): Promise<void> {
  const config = JSON.parse(process.env[PLAN_DP_ENV] ?? '') as PlanDpWorkerConfig;
  const { rank } = rankFromEnv();
  await selectBackend({ force: config.backend });
  const job = parseTrainingJob({ model: config.model, batchSize: config.batchSize, maxSteps: config.steps, epochs: 1, optimizer: config.optimizer, seed: 42, backend: config.backend }, PLAN_DP_ENV);
  const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
  // The ring's default data plane, as the cluster's peers use it.
  const ring = await joinRingFromLauncher({ cluster: 'plan-bench' }, { timeoutMs: 120_000 });
  const collective = new RingCollective(ring.membership, { timeoutMs: 120_000 });
  // CPU time of the whole process per step (all threads: compute, GC, the data plane's I/O threads).
  let cpuBefore = process.cpuUsage();
  await trainDataParallel(job, {
    ring: collective,
    data: { train, test },
    hashEvery: 0,
    evalEvery: 0,
    finalEvaluation: false,
    onStep: (step) => {
      const cpu = process.cpuUsage(cpuBefore);
      cpuBefore = process.cpuUsage();
      reportToLauncher('step', { rank, ...step, cpuMs: (cpu.user + cpu.system) / 1000 });
    },
  });
  // Closing at once could drop the other rank's last frames: a last tiny all-reduce proves both are done.
  await replicasFinished(collective);
  await ring.close();
}

// Imported by the benchmark for PLAN_DP_ENV and the config type: run only when started as a program.
if (isEntryPoint(import.meta.url)) runLaunchedRank(main);
