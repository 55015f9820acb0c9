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

interface StepReports {
  weighted: number;
  samples: number;
  reports: number;
}

/**
 * The loss curve of a run, one JSON line per step in `metrics.jsonl`. Peers report the loss of
 * their slice; a step's point is written once every member of the epoch has reported it. A resumed
 * run appends to the same file, so the curve continues from the checkpoint's step.
 *
 * When an epoch fails, its unfinished steps are set aside until the next epoch knows where it
 * starts: survivors' reports still in flight (sent before they heard of the failure) keep arriving
 * into the set-aside steps, and those up to the new start step were committed.
 */
export class LossLog {
  private pending = new Map<number, StepReports>();
  /** Failed epochs whose committed steps are not settled yet, by epoch. */
  private unsettled = new Map<number, { worldSize: number; steps: Map<number, StepReports> }>();
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
    if (this.epoch >= 0) this.unsettled.set(this.epoch, { worldSize: this.worldSize, steps: this.pending });
    this.pending = new Map();
    this.epoch = epoch;
    this.worldSize = worldSize;
  }

  /**
   * The new epoch starts after `startStep`: set-aside steps up to it were committed (a member died
   * after finishing the step, before its report arrived), so they go into the curve — marked
   * partial when some member's report was lost with it; later ones will be redone and are dropped.
   */
  startsAfter(startStep: number): void {
    const committed = new Map<number, { entry: StepReports; epoch: number; worldSize: number }>();
    for (const [epoch, { worldSize, steps }] of [...this.unsettled.entries()].sort(([a], [b]) => a - b)) {
      for (const [step, entry] of steps) if (step <= startStep) committed.set(step, { entry, epoch, worldSize });
    }
    for (const [step, { entry, epoch, worldSize }] of [...committed.entries()].sort(([a], [b]) => a - b)) {
      this.write(step, entry, epoch, worldSize, entry.reports < worldSize);
    }
    this.unsettled = new Map();
  }

  report(epoch: number, step: number, loss: number, samples: number): void {
    const steps = epoch === this.epoch ? this.pending : this.unsettled.get(epoch)?.steps;
    if (!steps) return;
    const entry = steps.get(step) ?? { weighted: 0, samples: 0, reports: 0 };
    entry.weighted += loss * samples;
    entry.samples += samples;
    entry.reports++;
    steps.set(step, entry);
    if (epoch !== this.epoch || entry.reports < this.worldSize) return;
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
