import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

export interface LossPoint {
  step: number;
  /** Mean loss over the global batch (each peer's slice weighted by its size). */
  loss: number;
  samples: number;
  worldSize: number;
  /** Some members' reports were lost with them; the step was committed, the loss is over fewer samples. */
  partial?: true;
  epoch: number;
  time: string;
}

/**
 * The loss curve of a run, one JSON line per step in `metrics.jsonl`. Peers report the loss of
 * their slice; a step's point is written once every member of the epoch has reported it. A resumed
 * run appends to the same file, so the curve continues from the checkpoint's step.
 */
export class LossLog {
  private pending = new Map<number, { weighted: number; samples: number; reports: number }>();
  private orphaned = new Map<number, { weighted: number; samples: number; reports: number }>();
  private orphanedFrom = { epoch: -1, worldSize: 0 };
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

  /** A new membership epoch. Steps of the old one that not every member reported are set aside. */
  beginEpoch(epoch: number, worldSize: number): void {
    if (this.pending.size > 0) {
      this.orphaned = this.pending;
      this.orphanedFrom = { epoch: this.epoch, worldSize: this.worldSize };
    }
    this.pending = new Map();
    this.epoch = epoch;
    this.worldSize = worldSize;
  }

  /**
   * The new epoch starts after `startStep`: set-aside steps up to it were committed (a member died
   * after finishing the step, before its report arrived), so they go into the curve, marked
   * partial; later ones will be redone and are dropped.
   */
  startsAfter(startStep: number): void {
    const committed = [...this.orphaned.entries()].filter(([step]) => step <= startStep).sort(([a], [b]) => a - b);
    for (const [step, entry] of committed) this.write(step, entry, this.orphanedFrom.epoch, this.orphanedFrom.worldSize, true);
    this.orphaned = new Map();
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
    this.write(step, entry, epoch, this.worldSize, false);
  }

  private write(step: number, entry: { weighted: number; samples: number }, epoch: number, worldSize: number, partial: boolean): void {
    const point: LossPoint = { step, loss: entry.weighted / Math.max(1, entry.samples), samples: entry.samples, worldSize, epoch, time: new Date().toISOString(), ...(partial ? { partial: true as const } : {}) };
    this.onPoint?.(point);
    this.writes = this.writes.then(() => appendFile(this.file, `${JSON.stringify(point)}\n`)).catch(() => {});
  }

  async flush(): Promise<void> {
    await this.writes;
  }
}
