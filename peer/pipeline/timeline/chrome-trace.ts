import type { TimelineData } from './timeline.js';

/** One event of the Chrome trace event format (chrome://tracing, ui.perfetto.dev). */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'M';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
}

const LANE_TIDS = { compute: 0, send: 1 } as const;

/**
 * Merges stage timelines into one trace: a process row per stage (and replica), a thread row for
 * compute and one for sends. Times are shifted so the trace starts at 0.
 */
export function toChromeTrace(timelines: readonly TimelineData[]): ChromeTrace {
  const origin = Math.min(...timelines.flatMap((t) => t.spans.map((s) => s.startUs)), Infinity);
  const events: TraceEvent[] = [];
  for (const timeline of timelines) {
    const pid = timeline.replica * 1000 + timeline.stage;
    const replica = timeline.replica > 0 || timelines.some((t) => t.replica > 0) ? ` replica ${timeline.replica}` : '';
    events.push({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: `stage ${timeline.stage}${replica}` } });
    events.push({ name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } });
    events.push({ name: 'thread_name', ph: 'M', pid, tid: LANE_TIDS.compute, args: { name: 'compute' } });
    events.push({ name: 'thread_name', ph: 'M', pid, tid: LANE_TIDS.send, args: { name: 'send' } });
    for (const span of timeline.spans) {
      const label = span.micro === undefined ? span.kind : `${span.kind} ${span.micro}`;
      events.push({
        name: label,
        cat: span.kind,
        ph: 'X',
        pid,
        tid: LANE_TIDS[span.lane],
        ts: round(span.startUs - origin),
        dur: round(span.durationUs),
        args: { step: span.step, ...(span.micro === undefined ? {} : { micro: span.micro }), ...(span.detail ? { detail: span.detail } : {}) },
      });
    }
  }
  return { traceEvents: events, displayTimeUnit: 'ms' };
}

function round(us: number): number {
  return Math.round(us * 1000) / 1000;
}
