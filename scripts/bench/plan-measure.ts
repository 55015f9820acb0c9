/**
 * The trainings `npm run bench:plan` times, each the way it really runs: data parallel over N peer
 * processes (trainDataParallel over the ring all-reduce; N = 1 is one peer training alone through the
 * same code), a pipeline of one process per stage (launchStages + stage-main). Each returns the
 * median step time after warm-up, where it went, and how busy the machine was meanwhile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { launchRing } from '../../peer/allreduce/launch/launch-ring.js';
import { launchStages } from '../../peer/pipeline/launch/launch-stages.js';
import { PIPELINE_JOB_ENV, stageFilePrefix, type PipelineJobInput } from '../../peer/pipeline/launch/pipeline-job.js';
import type { ScheduleKind } from '../../peer/pipeline/schedule/schedule.js';
import { summarizeBubble } from '../../peer/pipeline/timeline/bubble.js';
import type { TimelineData } from '../../peer/pipeline/timeline/timeline.js';
import type { DataParallelStepReport } from '../../peer/data-parallel/dp-trainer.js';
import { busyCoresBetween, machineCpuTicks } from '../../coordinator/planner/machine-load.js';
import type { BackendFlag } from '../../shared/engine/backend-candidates.js';
import { PLAN_DP_ENV, type PlanDpWorkerConfig } from './plan-dp-worker.js';
import { median } from './median.js';

const HERE = import.meta.dirname;
const DP_WORKER = path.join(HERE, 'plan-dp-worker.ts');
const STAGE_PROGRAM = path.join(HERE, '../../peer/pipeline/launch/stage-main.ts');

export interface Measured {
  stepMs: number;
  /** Every counted step (ms). */
  steps: number[];
  /** Cores the whole machine kept busy during the run (/proc/stat), undefined off Linux. */
  machineBusyCores?: number;
  wallMs: number;
  /** Pipelines: idle ÷ step time, mean over stages, from their timelines. */
  bubble?: number;
  /** Where a step's time went (medians over counted steps; data parallel: per rank). */
  parts?: Record<string, number | number[]>;
}

export interface RunSettings {
  model: string;
  batchSize: number;
  steps: number;
  warmUp: number;
  backend: BackendFlag;
  cores: number;
  /**
   * Start peers as plain children (one session: with Linux autogroup they share one scheduling
   * group) instead of each in a session of its own, as npm start does.
   */
  oneSession: boolean;
  timeoutMs: number;
}


/** Children started by this benchmark, killed if it is interrupted (detached ones would outlive it). */
const children = new Set<ChildProcess>();
let cleanupInstalled = false;
function track(child: ChildProcess): ChildProcess {
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    const killAll = () => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL'));
    process.once('exit', killAll);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        killAll();
        process.exit(130);
      });
    }
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function startChild(program: string, env: NodeJS.ProcessEnv, settings: RunSettings): ChildProcess {
  return track(spawn(process.execPath, ['--import', 'tsx', program], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: !settings.oneSession }));
}

async function timed<T>(settings: RunSettings, run: () => Promise<T>): Promise<{ value: T; machineBusyCores?: number; wallMs: number }> {
  const before = machineCpuTicks();
  const started = performance.now();
  const value = await run();
  const after = machineCpuTicks();
  const wallMs = performance.now() - started;
  return { value, wallMs, ...(before && after ? { machineBusyCores: busyCoresBetween(before, after, settings.cores) } : {}) };
}

/** Replicas over the ring all-reduce (its default data plane, as the cluster uses); one replica trains alone. */
export async function measureDataParallel(settings: RunSettings, replicas = 2): Promise<Measured> {
  const config: PlanDpWorkerConfig = { model: settings.model, batchSize: settings.batchSize, steps: settings.warmUp + settings.steps, backend: settings.backend, optimizer: 'adam' };
  const reports: (DataParallelStepReport & { rank: number })[] = [];
  const { machineBusyCores, wallMs } = await timed(settings, () =>
    launchRing({
      worldSize: replicas,
      timeoutMs: settings.timeoutMs,
      spawn: (_rank, env) => startChild(DP_WORKER, { ...process.env, ...env, [PLAN_DP_ENV]: JSON.stringify(config), RINGPIPE_LOG_LEVEL: 'warn', RINGPIPE_LOG_FORMAT: 'json' }, settings),
      onReport: (_rank, kind, data) => {
        if (kind === 'step') reports.push(data as DataParallelStepReport & { rank: number });
      },
    }),
  );
  // A step is over for everyone once the slowest rank is: the all-reduce synchronises them.
  const steps: number[] = [];
  for (let step = settings.warmUp + 1; step <= settings.warmUp + settings.steps; step++) {
    const ofStep = reports.filter((r) => r.step === step);
    if (ofStep.length !== replicas) throw new Error(`data-parallel run: step ${step} was reported by ${ofStep.length} of ${replicas} ranks`);
    steps.push(Math.max(...ofStep.map((r) => r.computeMs + r.commMs + r.dataWaitMs)));
  }
  const counted = reports.filter((r) => r.step > settings.warmUp);
  const perRank = (pick: (r: DataParallelStepReport) => number) => Array.from({ length: replicas }, (_, rank) => median(counted.filter((r) => r.rank === rank).map(pick)));
  const parts = {
    computeMs: perRank((r) => r.computeMs),
    commMs: perRank((r) => r.commMs),
    dataWaitMs: perRank((r) => r.dataWaitMs),
    cpuMs: perRank((r) => (r as { cpuMs?: number }).cpuMs ?? NaN),
  };
  return { stepMs: median(steps), steps, wallMs, parts, ...(machineBusyCores !== undefined ? { machineBusyCores } : {}) };
}

/** A pipeline of one process per stage over loopback transport links; step time from the stages' timelines. */
export async function measurePipeline(settings: RunSettings, pipeline: { balance: number[]; microBatches: number; schedule: ScheduleKind; rematerialize: boolean }, outDir: string): Promise<Measured> {
  const stages = pipeline.balance.length;
  const job: PipelineJobInput = {
    model: settings.model,
    seed: 42,
    data: 'mnist',
    balance: pipeline.balance,
    batchSize: settings.batchSize,
    steps: settings.warmUp + settings.steps,
    backend: settings.backend,
    runs: [{ microBatches: pipeline.microBatches, schedule: pipeline.schedule, rematerialize: pipeline.rematerialize }],
    outDir,
    receiveTimeoutMs: settings.timeoutMs,
  };
  const { machineBusyCores, wallMs } = await timed(settings, () =>
    launchStages({
      stages,
      timeoutMs: settings.timeoutMs,
      spawn: (_place, env) => startChild(STAGE_PROGRAM, { ...process.env, ...env, [PIPELINE_JOB_ENV]: JSON.stringify(job), RINGPIPE_LOG_LEVEL: 'warn', RINGPIPE_LOG_FORMAT: 'json' }, settings),
    }),
  );
  const timelines: TimelineData[] = [];
  for (let stage = 0; stage < stages; stage++) timelines.push(JSON.parse(await readFile(`${stageFilePrefix(outDir, 0, stage, 0)}.timeline.json`, 'utf8')) as TimelineData);
  // Per-step durations of the slowest stage, warm-up steps skipped.
  const steps: number[] = [];
  for (let step = settings.warmUp; step < settings.warmUp + settings.steps; step++) {
    steps.push(Math.max(...timelines.map((t) => { const s = t.steps.find((x) => x.step === step); return s ? (s.endUs - s.startUs) / 1000 : NaN; })));
  }
  const summary = summarizeBubble(timelines, { skipSteps: settings.warmUp });
  const perStage = (pick: (s: (typeof summary.perStage)[number]) => number) => summary.perStage.map((s) => pick(s) / summary.steps);
  const parts = { computeMs: perStage((s) => s.computeMs), idleMs: perStage((s) => s.idleMs), otherMs: perStage((s) => s.otherMs) };
  return { stepMs: median(steps), steps, wallMs, bubble: summary.measured, parts, ...(machineBusyCores !== undefined ? { machineBusyCores } : {}) };
}
