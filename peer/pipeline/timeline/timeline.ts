/**
 * Where one stage's time went, span by span, in the spirit of Horovod's timeline. Times are
 * microseconds on the Unix epoch clock (performance.timeOrigin + now), so spans recorded by processes
 * on one machine line up in a trace viewer; across machines they are as aligned as the clocks are.
 */
export type SpanKind = 'forward' | 'backward' | 'idle' | 'send' | 'update' | 'all-reduce' | 'data';

/** Rows of the trace: the compute row shows work and idle waits; sends overlap it on their own row. */
export type Lane = 'compute' | 'send';

export interface Span {
  kind: SpanKind;
  lane: Lane;
  step: number;
  micro?: number;
  startUs: number;
  durationUs: number;
  /** What was waited for, sent, … */
  detail?: string;
}

export interface StepWindow {
  step: number;
  startUs: number;
  endUs: number;
}

/** Everything a stage recorded, as plain JSON (written to files, sent to a launcher). */
export interface TimelineData {
  stage: number;
  stages: number;
  replica: number;
  microBatches: number;
  schedule: string;
  spans: Span[];
  steps: StepWindow[];
}

export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export class Timeline {
  readonly spans: Span[] = [];
  readonly steps: StepWindow[] = [];

  constructor(readonly meta: Omit<TimelineData, 'spans' | 'steps'>) {}

  record(kind: SpanKind, step: number, startUs: number, endUs: number, extra: { micro?: number; detail?: string; lane?: Lane } = {}): void {
    const span: Span = { kind, lane: extra.lane ?? (kind === 'send' ? 'send' : 'compute'), step, startUs, durationUs: Math.max(0, endUs - startUs) };
    if (extra.micro !== undefined) span.micro = extra.micro;
    if (extra.detail !== undefined) span.detail = extra.detail;
    this.spans.push(span);
  }

  /** Runs `fn` (synchronous compute) and records it as one span. */
  time<T>(kind: SpanKind, step: number, fn: () => T, extra: { micro?: number; detail?: string } = {}): T {
    const start = nowUs();
    try {
      return fn();
    } finally {
      this.record(kind, step, start, nowUs(), extra);
    }
  }

  /** Awaits `promise` and records the wait as one span. */
  async wait<T>(kind: SpanKind, step: number, promise: Promise<T>, extra: { micro?: number; detail?: string; lane?: Lane } = {}): Promise<T> {
    const start = nowUs();
    try {
      return await promise;
    } finally {
      this.record(kind, step, start, nowUs(), extra);
    }
  }

  stepDone(step: number, startUs: number, endUs: number): void {
    this.steps.push({ step, startUs, endUs });
  }

  toJSON(): TimelineData {
    return { ...this.meta, spans: this.spans, steps: this.steps };
  }
}
