import { summarizeBubble } from '../../../peer/pipeline/timeline/bubble.js';
import type { TimelineData } from '../../../peer/pipeline/timeline/timeline.js';
import type { GanttSpan, PipelineView } from './view-types.js';

const GANTT_KINDS = new Set<GanttSpan['kind']>(['forward', 'backward', 'idle', 'update', 'all-reduce', 'data']);

/**
 * The pipeline panel from the stages' timelines (`peer/pipeline/timeline/`): the compute row of
 * every stage for the newest mini-batch all stages have finished, on one time axis, plus the
 * measured bubble over all recorded steps (the warm-up step left out when there are others).
 * Sends are left out: they overlap the compute row and have a row of their own only in traces.
 */
export function pipelineGantt(timelines: readonly TimelineData[]): PipelineView | null {
  const first = timelines[0];
  if (!first) return null;
  const finishedEverywhere = first.steps.map((window) => window.step).filter((step) => timelines.every((t) => t.steps.some((window) => window.step === step)));
  if (finishedEverywhere.length === 0) return null;
  const step = Math.max(...finishedEverywhere);
  const windows = timelines.map((t) => t.steps.find((window) => window.step === step)!);
  const originUs = Math.min(...windows.map((window) => window.startUs));
  const endUs = Math.max(...windows.map((window) => window.endUs));
  const summary = summarizeBubble(timelines, { skipSteps: finishedEverywhere.length > 1 ? Math.min(...finishedEverywhere) + 1 : Math.min(...finishedEverywhere) });
  const rows = timelines
    .map((timeline) => ({
      stage: timeline.stage,
      replica: timeline.replica,
      bubble: finiteOrNull(summary.perStage.find((share) => share.stage === timeline.stage && share.replica === timeline.replica)?.bubble),
      spans: timeline.spans
        .filter((span) => span.step === step && span.lane === 'compute' && GANTT_KINDS.has(span.kind as GanttSpan['kind']))
        .map(
          (span): GanttSpan => ({
            kind: span.kind as GanttSpan['kind'],
            micro: span.micro ?? null,
            startMs: (span.startUs - originUs) / 1000,
            durationMs: span.durationUs / 1000,
          }),
        )
        .sort((a, b) => a.startMs - b.startMs),
    }))
    .sort((a, b) => a.replica - b.replica || a.stage - b.stage);
  return {
    stages: first.stages,
    microBatches: first.microBatches,
    schedule: first.schedule,
    step,
    durationMs: (endUs - originUs) / 1000,
    rows,
    measuredBubble: finiteOrNull(summary.measured),
    theoreticalBubble: summary.theoretical,
  };
}

/** A stage with an empty window has no bubble figure (NaN); JSON has no NaN. */
function finiteOrNull(value: number | undefined): number | null {
  return value !== undefined && Number.isFinite(value) ? value : null;
}
