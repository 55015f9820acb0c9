import { theoreticalBubble } from '../schedule/schedule.js';
import type { TimelineData } from './timeline.js';

export interface StageTimeShare {
  stage: number;
  replica: number;
  /** Wall time of the counted steps on this stage. */
  windowMs: number;
  /** Forward + backward compute. */
  computeMs: number;
  /** Waiting for a neighbour's activations or gradients, or for sends to drain. */
  idleMs: number;
  /** Optimizer update, gradient all-reduce across replicas, waiting for input data. */
  otherMs: number;
  /** idle / window. */
  bubble: number;
}

export interface BubbleSummary {
  stages: number;
  microBatches: number;
  /** Steps counted (the first ones are skipped as warm-up). */
  steps: number;
  perStage: StageTimeShare[];
  /** Mean over stages of idle / window: the measured bubble. */
  measured: number;
  /** (K − 1) / (M + K − 1), which assumes equal stages and free communication. */
  theoretical: number;
  /** Mean step time (ms), the slowest stage's. */
  stepMs: number;
}

/** Measured bubble of a run, from its stage timelines, next to GPipe's theoretical figure. */
export function summarizeBubble(timelines: readonly TimelineData[], options: { skipSteps?: number } = {}): BubbleSummary {
  const first = timelines[0];
  if (!first) throw new Error('no timelines to summarise');
  const skip = options.skipSteps ?? 1;
  const perStage = timelines.map((timeline): StageTimeShare => {
    const counted = new Set(timeline.steps.filter((s) => s.step >= skip).map((s) => s.step));
    const windowUs = timeline.steps.filter((s) => counted.has(s.step)).reduce((total, s) => total + (s.endUs - s.startUs), 0);
    const sum = (kinds: string[]): number =>
      timeline.spans.filter((s) => counted.has(s.step) && s.lane === 'compute' && kinds.includes(s.kind)).reduce((total, s) => total + s.durationUs, 0);
    const idleUs = sum(['idle']);
    return {
      stage: timeline.stage,
      replica: timeline.replica,
      windowMs: windowUs / 1000,
      computeMs: sum(['forward', 'backward']) / 1000,
      idleMs: idleUs / 1000,
      otherMs: sum(['update', 'all-reduce', 'data']) / 1000,
      bubble: windowUs > 0 ? idleUs / windowUs : NaN,
    };
  });
  const steps = Math.max(0, ...timelines.map((t) => t.steps.filter((s) => s.step >= skip).length));
  return {
    stages: first.stages,
    microBatches: first.microBatches,
    steps,
    perStage,
    measured: perStage.reduce((total, s) => total + s.bubble, 0) / perStage.length,
    theoretical: theoreticalBubble(first.stages, first.microBatches),
    stepMs: steps > 0 ? Math.max(...perStage.map((s) => s.windowMs)) / steps : NaN,
  };
}
