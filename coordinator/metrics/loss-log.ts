import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

export interface LossPoint {
  step: number;
  /** Mean loss over the global batch (each peer's slice weighted by its size). */
  loss: number;
  samples: number;
  worldSize: number;
  epoch: number;
  time: string;
}

/**
 * The loss curve of a run, one JSON line per step in `metrics.jsonl`. Peers report the loss of
 * their slice; a step's point is written once every member of the epoch has reported it. A resumed
 * run appends to the same file, so the curve continues from the checkpoint's step.
 */
export class LossLog {
  private readonly pending = new Map<number, { weighted: number; samples: number; reports: number }>();
  private epoch = -1;
  private worldSize = 0;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly onPoint?: (point: LossPoint) => void,
  ) {}

  async open(): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
  }

  /** A new membership epoch: partial steps of the old one are dropped (they will be redone). */
  beginEpoch(epoch: number, worldSize: number): void {
    this.epoch = epoch;
    this.worldSize = worldSize;
    this.pending.clear();
  }

  report(epoch: number, step: number, loss: number, samples: number): void {
    if (epoch !== this.epoch) return;
    const entry = this.pending.get(step) ?? { weighted: 0, samples: 0, reports: 0 };
    entry.weighted += loss * samples;
    entry.samples += samples;
    entry.reports++;
    this.pending.set(step, entry);
    if (entry.reports < this.worldSize) return;
    this.pending.delete(step);
    const point: LossPoint = { step, loss: entry.weighted / Math.max(1, entry.samples), samples: entry.samples, worldSize: this.worldSize, epoch, time: new Date().toISOString() };
    this.onPoint?.(point);
    this.writes = this.writes.then(() => appendFile(this.file, `${JSON.stringify(point)}\n`)).catch(() => {});
  }

  async flush(): Promise<void> {
    await this.writes;
  }
}
