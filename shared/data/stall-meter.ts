import { createLogger, type Logger } from '../log/logger.js';
import { classifyStall, type InputBoundVerdict } from './stall-verdict.js';

export { classifyStall, INPUT_BOUND_VERDICTS, type InputBoundVerdict } from './stall-verdict.js';

export interface StepTiming {
  waitMs: number;
  stepMs: number;
  stallPercent: number;
}

/** What the coordinator can read (`snapshot()`) or subscribe to (`onReport`). */
export interface StallReport {
  /** Steps measured, not counting the first (pipeline start-up, reported as `warmupMs`). */
  steps: number;
  waitMs: number;
  stepMs: number;
  /** Total wait / total step time since the start, in percent. */
  stallPercent: number;
  /** The same over the last `window` steps. */
  recentStallPercent: number;
  verdict: InputBoundVerdict;
  /** Wait for the very first batch (threads starting, first decode): not a steady-state stall. */
  warmupMs: number | undefined;
  lastStep: StepTiming | undefined;
}

export interface StallMeterOptions {
  /** Emit and log a report every this many steps (default 100). */
  reportEvery?: number;
  /** Steps in the recent window (default 50). */
  window?: number;
  log?: Logger;
}

let defaultLog: Logger | undefined;

export class StallMeter {
  private steps = 0;
  private waitMs = 0;
  private stepMs = 0;
  private warmupMs: number | undefined;
  private lastStep: StepTiming | undefined;
  private readonly recent: StepTiming[] = [];
  private readonly listeners = new Set<(report: StallReport) => void>();
  private lastVerdict: InputBoundVerdict = 'not input-bound';
  private readonly reportEvery: number;
  private readonly window: number;
  private readonly log: Logger;

  constructor(options: StallMeterOptions = {}) {
    this.reportEvery = options.reportEvery ?? 100;
    this.window = options.window ?? 50;
    this.log = options.log ?? (defaultLog ??= createLogger('data'));
  }

  recordWarmup(waitMs: number): void {
    this.warmupMs = waitMs;
  }

  /** One training step: `stepMs` from asking for its batch to asking for the next one, `waitMs` of it waiting. */
  record(waitMs: number, stepMs: number): void {
    const step = { waitMs, stepMs, stallPercent: stepMs > 0 ? (100 * waitMs) / stepMs : 0 };
    this.steps++;
    this.waitMs += waitMs;
    this.stepMs += stepMs;
    this.lastStep = step;
    this.recent.push(step);
    if (this.recent.length > this.window) this.recent.shift();
    if (this.steps % this.reportEvery === 0) this.emit();
  }

  snapshot(): StallReport {
    const recentWait = this.recent.reduce((s, t) => s + t.waitMs, 0);
    const recentStep = this.recent.reduce((s, t) => s + t.stepMs, 0);
    const stallPercent = this.stepMs > 0 ? (100 * this.waitMs) / this.stepMs : 0;
    return {
      steps: this.steps,
      waitMs: this.waitMs,
      stepMs: this.stepMs,
      stallPercent,
      recentStallPercent: recentStep > 0 ? (100 * recentWait) / recentStep : 0,
      verdict: classifyStall(stallPercent),
      warmupMs: this.warmupMs,
      lastStep: this.lastStep,
    };
  }

  /** Called with a report every `reportEvery` steps; returns an unsubscribe function. */
  onReport(listener: (report: StallReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    const report = this.snapshot();
    const verdict = classifyStall(report.recentStallPercent);
    const fields = { steps: report.steps, stallPercent: round(report.stallPercent), recentStallPercent: round(report.recentStallPercent), verdict };
    if (verdict !== 'not input-bound' && verdict !== this.lastVerdict) {
      this.log.warn(fields, `trainer is ${verdict}: it waits ${round(report.recentStallPercent)}% of each step for data. Raise map({ parallel }) or prefetch(), or cache() decoded data.`);
    } else {
      this.log.info(fields, 'input pipeline stall');
    }
    this.lastVerdict = verdict;
    for (const listener of this.listeners) listener(report);
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
