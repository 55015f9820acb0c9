import type { StageOp } from '../../peer/pipeline/schedule/schedule.js';
import { Prng } from '../../shared/random/prng.js';
import { JITTER_SAMPLES, JITTER_SEED, sampleDuration } from './jitter.js';

/** One stage of the pipeline to simulate; work in idle-core milliseconds of this machine. */
export interface SimulatedStage {
  host: string;
  /** Its order of passes (`stageSchedule`). */
  ops: readonly StageOp[];
  forwardWork: readonly number[];
  backwardWork: readonly number[];
  /** Adding a micro-batch's gradients to the sums, on every backward after the first. */
  accumulateWork: number;
  updateWork: number;
  /** Work done per millisecond when `busyOnHost` stages of the pipeline compute on its host at once. */
  rate(busyOnHost: number): number;
  /** Milliseconds for micro-batch m's activation to reach the next stage (and its gradient to come back). */
  transferMs: readonly number[];
  /** κ of its host's jitter (jitter.ts) with `busyOnHost` busy stages; absent or 0: passes take their mean time. */
  jitterMs?(busyOnHost: number): number;
}

export interface SimulationOptions {
  /** Monte Carlo replications when some stage has jitter. Default JITTER_SAMPLES. */
  samples?: number;
  seed?: number;
}

export interface PipelineSimulation {
  stepMs: number;
  /** Per stage: milliseconds computing (forward, backward, accumulate, update) and waiting. */
  busyMs: number[];
  idleMs: number[];
  /** Mean over stages of idle ÷ step, as the pipeline's timelines measure it. */
  bubble: number;
}

interface Running {
  remaining: number;
}

/**
 * One mini-batch through the pipeline, event by event: a stage runs its next pass as soon as its
 * input (activation from the previous stage, gradient from the next) has arrived; stages sharing a
 * host share its cores while they compute at the same time (`rate`); transfers overlap compute (sends
 * are not awaited); every stage ends with its optimizer update. The step ends when the last one does.
 * With jitter, the mean over replications with sampled pass times.
 */
export function simulatePipeline(stages: readonly SimulatedStage[], options: SimulationOptions = {}): PipelineSimulation {
  const jittery = stages.some((stage) => (stage.jitterMs?.(1) ?? 0) > 0);
  if (!jittery) return simulateOnce(stages, undefined);
  const samples = options.samples ?? JITTER_SAMPLES;
  const prng = new Prng(options.seed ?? JITTER_SEED);
  const runs = Array.from({ length: samples }, () => simulateOnce(stages, prng));
  const mean = (pick: (r: PipelineSimulation) => number) => runs.reduce((total, r) => total + pick(r), 0) / runs.length;
  return {
    stepMs: mean((r) => r.stepMs),
    busyMs: stages.map((_, s) => mean((r) => r.busyMs[s]!)),
    idleMs: stages.map((_, s) => mean((r) => r.idleMs[s]!)),
    bubble: mean((r) => r.bubble),
  };
}

function simulateOnce(stages: readonly SimulatedStage[], prng: Prng | undefined): PipelineSimulation {
  const K = stages.length;
  const M = stages[0]?.forwardWork.length ?? 0;
  const activationAt = stages.map(() => new Array<number>(M).fill(Infinity));
  const gradientAt = stages.map(() => new Array<number>(M).fill(Infinity));
  const next = stages.map(() => 0);
  const backwardsDone = stages.map(() => 0);
  const running: (Running | undefined)[] = stages.map(() => undefined);
  const current: ({ kind: 'forward' | 'backward' | 'update'; micro: number } | undefined)[] = stages.map(() => undefined);
  const done = stages.map(() => false);
  const busy = stages.map(() => 0);
  let now = 0;

  /** The work of a pass, stretched or shrunk as a sampled wall time would (jitter.ts). */
  const jittered = (stage: SimulatedStage, work: number): number => {
    if (!prng || !stage.jitterMs || work <= 0) return work;
    const busy = 1 + stages.filter((other, o) => other.host === stage.host && running[o]).length;
    const meanMs = work / stage.rate(busy);
    return (work * sampleDuration(meanMs, stage.jitterMs(busy), prng)) / meanMs;
  };
  const startReady = (): void => {
    stages.forEach((stage, s) => {
      if (running[s] || done[s]) return;
      const op = stage.ops[next[s]!];
      if (!op) {
        running[s] = { remaining: jittered(stage, stage.updateWork) };
        current[s] = { kind: 'update', micro: -1 };
        return;
      }
      if (op.kind === 'forward') {
        if (s > 0 && activationAt[s]![op.micro]! > now) return;
        running[s] = { remaining: jittered(stage, stage.forwardWork[op.micro]!) };
      } else {
        if (s < K - 1 && gradientAt[s]![op.micro]! > now) return;
        running[s] = { remaining: jittered(stage, stage.backwardWork[op.micro]! + (backwardsDone[s]! > 0 ? stage.accumulateWork : 0)) };
      }
      current[s] = op;
      next[s]!++;
    });
  };

  for (let events = 0; !done.every(Boolean); events++) {
    if (events > 100 * (K * M * 4 + 10)) throw new Error('pipeline simulation did not finish (inconsistent schedule)');
    startReady();
    const busyOnHost = new Map<string, number>();
    stages.forEach((stage, s) => running[s] && busyOnHost.set(stage.host, (busyOnHost.get(stage.host) ?? 0) + 1));
    const rates = stages.map((stage) => stage.rate(busyOnHost.get(stage.host) ?? 1));
    let step = Infinity;
    stages.forEach((_, s) => {
      if (running[s]) step = Math.min(step, running[s]!.remaining / rates[s]!);
    });
    for (const times of [...activationAt, ...gradientAt]) for (const t of times) if (t > now && t < now + step) step = t - now;
    if (!Number.isFinite(step)) throw new Error('pipeline simulation is stuck: every stage waits for an input that never comes');
    now += step;
    stages.forEach((stage, s) => {
      const task = running[s];
      if (!task) return;
      busy[s]! += step;
      task.remaining -= rates[s]! * step;
      if (task.remaining > 1e-9) return;
      running[s] = undefined;
      const op = current[s]!;
      if (op.kind === 'update') done[s] = true;
      else if (op.kind === 'forward' && s < K - 1) activationAt[s + 1]![op.micro] = now + stage.transferMs[op.micro]!;
      else if (op.kind === 'backward') {
        backwardsDone[s]!++;
        if (s > 0) gradientAt[s - 1]![op.micro] = now + stages[s - 1]!.transferMs[op.micro]!;
      }
    });
  }
  const idle = busy.map((b) => now - b);
  return { stepMs: now, busyMs: busy, idleMs: idle, bubble: idle.reduce((a, b) => a + b, 0) / K / now };
}
