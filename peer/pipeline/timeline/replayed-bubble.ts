import { stageSchedule, type ScheduleKind } from '../schedule/schedule.js';
import type { TimelineData } from './timeline.js';

/** What the stages' own work implies, with links that cost nothing and deliver at once. */
export interface ReplayedBubble {
  /** Mean step time (ms) of the replay. */
  stepMs: number;
  /** Mean over stages and steps of (step time − the stage's own work) ÷ step time. */
  bubble: number;
}

/**
 * Replays each counted step of a run on its schedule with free, instant links: every forward,
 * backward, update and data span takes the time the stage measured for it, and an op starts as soon
 * as its stage is free and its input exists (the previous stage's forward, the next stage's
 * backward). The gap between this bubble and (K − 1)/(M + K − 1) is what unequal stages and the
 * update cost; the gap between it and the measured bubble is what moving tensors between processes
 * costs (sends, wake-ups, the scheduler).
 */
export function replayBubble(timelines: readonly TimelineData[], options: { skipSteps?: number } = {}): ReplayedBubble {
  const stages = [...timelines].sort((a, b) => a.stage - b.stage);
  const first = stages[0];
  if (!first) throw new Error('no timelines to replay');
  const skip = options.skipSteps ?? 1;
  const K = stages.length;
  const M = first.microBatches;
  const ops = stages.map((t) => stageSchedule(t.schedule as ScheduleKind, { stage: t.stage, stages: K, microBatches: M }));
  const steps = first.steps.map((s) => s.step).filter((step) => step >= skip && stages.every((t) => t.steps.some((s) => s.step === step)));
  let totalMs = 0;
  let bubbleSum = 0;
  for (const step of steps) {
    const span = (s: number, kind: string, micro?: number): number =>
      stages[s]!.spans.filter((x) => x.step === step && x.lane === 'compute' && x.kind === kind && (micro === undefined || x.micro === micro)).reduce((t, x) => t + x.durationUs / 1000, 0);
    const forwardDone: number[][] = stages.map(() => new Array<number>(M).fill(Infinity));
    const backwardDone: number[][] = stages.map(() => new Array<number>(M).fill(Infinity));
    const clock = stages.map((_, s) => span(s, 'data'));
    const busy = [...clock];
    const next = stages.map(() => 0);
    // Run whichever stage can make progress until every stage has run its ops.
    for (let progressed = true; progressed; ) {
      progressed = false;
      for (let s = 0; s < K; s++) {
        const op = ops[s]![next[s]!];
        if (!op) continue;
        const ready = op.kind === 'forward' ? (s === 0 ? 0 : forwardDone[s - 1]![op.micro]!) : s === K - 1 ? forwardDone[s]![op.micro]! : backwardDone[s + 1]![op.micro]!;
        if (ready === Infinity) continue;
        const duration = span(s, op.kind, op.micro);
        const end = Math.max(clock[s]!, ready) + duration;
        (op.kind === 'forward' ? forwardDone : backwardDone)[s]![op.micro] = end;
        clock[s] = end;
        busy[s]! += duration;
        next[s]!++;
        progressed = true;
      }
    }
    const after = stages.map((_, s) => span(s, 'update') + span(s, 'all-reduce'));
    const stepMs = Math.max(...clock.map((c, s) => c + after[s]!));
    totalMs += stepMs;
    bubbleSum += stages.reduce((t, _, s) => t + (stepMs - busy[s]! - after[s]!) / stepMs, 0) / K;
  }
  return { stepMs: steps.length ? totalMs / steps.length : NaN, bubble: steps.length ? bubbleSum / steps.length : NaN };
}
