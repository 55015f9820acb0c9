import type { LossPoint } from '../../metrics/loss-log.js';
import type { ClusterMessageOf } from '../../protocol/cluster-messages.js';
import type { StepPoint } from './view-types.js';

type Progress = ClusterMessageOf<'progress'>;

interface StepReports {
  reports: number;
  samples: number;
  correct: number;
  accuracyReports: number;
  samplesPerSecond: number;
  computeMs: number;
  computeReports: number;
  exchangeMs: number;
  dataWaitMs: number;
  dataReports: number;
  stallPercent: number;
  stallReports: number;
  allReduceMs: number;
  allReduceBytes: number;
  allReduceReports: number;
}

/** Points the page can plot without slowing down; older ones stay in the run's metrics.jsonl. */
export const MAX_POINTS = 5_000;
/** Reports of steps whose loss point never came (a failed epoch) are dropped after this many steps. */
const STALE_STEPS = 64;

/**
 * One point per optimizer step, for the training charts. Every member reports its slice's figures
 * in `progress`; the coordinator's loss log says when a step is complete (all members reported).
 * The coordinator hands each report to its loss log a microtask after the registry emitted it, so
 * a step's point always finds the step's reports here.
 */
export class StepSeries {
  readonly points: StepPoint[] = [];
  private readonly pending = new Map<string, StepReports>();
  private nextSeq = 1;

  /** Loss-only points of a resumed run (what the coordinator kept of its loss curve). */
  seed(curve: readonly LossPoint[]): void {
    for (const point of curve) this.push(this.pointOf(point, undefined));
  }

  report(message: Progress): void {
    const key = keyOf(message.epoch, message.step);
    const entry = this.pending.get(key) ?? emptyReports();
    entry.reports++;
    entry.samples += message.samples;
    entry.samplesPerSecond += message.samplesPerSecond;
    entry.exchangeMs += message.exchangeMs;
    if (message.accuracy !== undefined) {
      entry.correct += message.accuracy * message.samples;
      entry.accuracyReports++;
    }
    if (message.computeMs !== undefined) {
      entry.computeMs += message.computeMs;
      entry.computeReports++;
    }
    if (message.dataWaitMs !== undefined) {
      entry.dataWaitMs += message.dataWaitMs;
      entry.dataReports++;
    }
    if (message.stallPercent !== undefined) {
      entry.stallPercent += message.stallPercent;
      entry.stallReports++;
    }
    if (message.allReduceMs !== undefined && message.allReduceBytes !== undefined) {
      entry.allReduceMs += message.allReduceMs;
      entry.allReduceBytes = message.allReduceBytes;
      entry.allReduceReports++;
    }
    this.pending.set(key, entry);
  }

  /** The step is complete: its point, also appended to `points`. */
  complete(point: LossPoint): StepPoint {
    const key = keyOf(point.epoch, point.step);
    const reports = this.pending.get(key);
    this.pending.delete(key);
    for (const [pendingKey] of this.pending) {
      const [, step] = pendingKey.split(':').map(Number);
      if (step! < point.step - STALE_STEPS) this.pending.delete(pendingKey);
    }
    const stepPoint = this.pointOf(point, reports);
    this.push(stepPoint);
    return stepPoint;
  }

  private pointOf(point: LossPoint, reports: StepReports | undefined): StepPoint {
    const mean = (sum: number, count: number): number | null => (count > 0 ? sum / count : null);
    const n = point.worldSize;
    // Peers report the bytes each rank sends in a ring all-reduce, 2(n−1)/n of the buffer: sent
    // bytes over time is nccl-tests' busbw (algbw · 2(n−1)/n) as it stands.
    let busbw: number | null = null;
    if (reports && reports.allReduceReports > 0 && n > 1) {
      const seconds = reports.allReduceMs / reports.allReduceReports / 1000;
      busbw = seconds > 0 ? reports.allReduceBytes / seconds : null;
    }
    return {
      seq: this.nextSeq++,
      step: point.step,
      time: Date.parse(point.time),
      loss: point.loss,
      accuracy: reports && reports.accuracyReports === reports.reports && reports.samples > 0 ? reports.correct / reports.samples : null,
      samplesPerSecond: reports ? mean(reports.samplesPerSecond, reports.reports) : null,
      computeMs: reports ? mean(reports.computeMs, reports.computeReports) : null,
      communicationMs: reports ? mean(reports.exchangeMs, reports.reports) : null,
      dataWaitMs: reports ? mean(reports.dataWaitMs, reports.dataReports) : null,
      stallPercent: reports ? mean(reports.stallPercent, reports.stallReports) : null,
      busbwBytesPerSecond: busbw,
      worldSize: n,
      partial: point.partial === true,
    };
  }

  private push(point: StepPoint): void {
    this.points.push(point);
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
  }
}

function keyOf(epoch: number, step: number): string {
  return `${epoch}:${step}`;
}

function emptyReports(): StepReports {
  return {
    reports: 0,
    samples: 0,
    correct: 0,
    accuracyReports: 0,
    samplesPerSecond: 0,
    computeMs: 0,
    computeReports: 0,
    exchangeMs: 0,
    dataWaitMs: 0,
    dataReports: 0,
    stallPercent: 0,
    stallReports: 0,
    allReduceMs: 0,
    allReduceBytes: 0,
    allReduceReports: 0,
  };
}
