import type { PipelineSection } from '../job/pipeline-section.js';
import type { ClusterMessageOf } from '../protocol/cluster-messages.js';
import { theoreticalBubble } from '../../peer/pipeline/schedule/schedule.js';
import type { TimelineData } from '../../peer/pipeline/timeline/timeline.js';

export interface BubbleFigures {
  stages: number;
  microBatches: number;
  schedule: string;
  /** Mean over stages of (time waiting for a neighbour) / (step time), over every reported step but each epoch's first. */
  measuredBubble: number | null;
  /** (K − 1) / (M + K − 1). */
  theoreticalBubble: number;
  steps: number;
}

/**
 * What the stages report after each mini-batch, kept for the dashboard (the newest step every
 * stage has finished, as the timelines `pipelineGantt` draws) and summed into the measured bubble.
 */
export class StageTimelines {
  private latest = new Map<number, ClusterMessageOf<'stage-report'>[]>();
  private settings: { microBatches: number; schedule: string } = { microBatches: 1, schedule: 'gpipe' };
  private stages = 0;
  private firstOfEpoch = new Set<number>();
  private readonly sums = new Map<number, { idleMs: number; stepMs: number; steps: number }>();

  constructor(private readonly onTimelines?: (timelines: TimelineData[]) => void) {}

  beginEpoch(settings: Pick<PipelineSection, 'microBatches' | 'schedule'>, stages: number): void {
    this.settings = { microBatches: settings.microBatches, schedule: settings.schedule };
    this.stages = stages;
    this.latest = new Map();
    this.firstOfEpoch = new Set();
  }

  add(report: ClusterMessageOf<'stage-report'>): void {
    // Each stage's first step of an epoch includes warm-up (first kernels, link set-up): not counted.
    if (this.firstOfEpoch.has(report.stage)) {
      const sum = this.sums.get(report.stage) ?? { idleMs: 0, stepMs: 0, steps: 0 };
      sum.idleMs += report.idleMs;
      sum.stepMs += report.stepMs;
      sum.steps++;
      this.sums.set(report.stage, sum);
    }
    this.firstOfEpoch.add(report.stage);
    const reports = this.latest.get(report.step) ?? [];
    reports.push(report);
    this.latest.set(report.step, reports);
    if (reports.length === this.stages) {
      for (const step of this.latest.keys()) if (step <= report.step) this.latest.delete(step);
      this.onTimelines?.(reports.map((r) => this.timelineOf(r)));
    }
  }

  summary(): BubbleFigures {
    const shares = [...this.sums.values()].filter((s) => s.stepMs > 0).map((s) => s.idleMs / s.stepMs);
    return {
      stages: this.stages,
      microBatches: this.settings.microBatches,
      schedule: this.settings.schedule,
      measuredBubble: shares.length > 0 ? shares.reduce((a, b) => a + b, 0) / shares.length : null,
      theoreticalBubble: theoreticalBubble(Math.max(1, this.stages), this.settings.microBatches),
      steps: Math.max(0, ...[...this.sums.values()].map((s) => s.steps)),
    };
  }

  private timelineOf(report: ClusterMessageOf<'stage-report'>): TimelineData {
    const start = Math.min(...report.spans.map((span) => span.startUs));
    const end = Math.max(...report.spans.map((span) => span.startUs + span.durationUs));
    return {
      stage: report.stage,
      stages: this.stages,
      replica: 0,
      microBatches: this.settings.microBatches,
      schedule: this.settings.schedule,
      spans: report.spans.map((span) => ({ kind: span.kind, lane: 'compute', step: report.step, ...(span.micro !== null ? { micro: span.micro } : {}), startUs: span.startUs, durationUs: span.durationUs })),
      steps: report.spans.length > 0 ? [{ step: report.step, startUs: start, endUs: end }] : [],
    };
  }
}
