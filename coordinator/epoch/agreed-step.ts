/**
 * Picks the step after which every pipeline stage checkpoints or stops. The request reaches the
 * stages some time after the coordinator heard of the newest step (its own event loop, the links,
 * the peers' event loops), and a stage already past the agreed step would act one step later than
 * the others: the checkpoint's parts would then belong to different steps and never join. So the
 * margin is a time, converted to steps with the rate the stages are training at, and never less
 * than a few steps.
 */
export const AGREED_STEP_MIN_MARGIN = 2;
export const AGREED_STEP_MARGIN_SECONDS = 2;
/** The rate is measured over the reports of about this long. */
const RATE_WINDOW_MS = 5_000;

export class AgreedStepPicker {
  private readonly reports: Array<{ at: number; step: number }> = [];
  private newest: number;

  constructor(startStep: number, private readonly now: () => number = () => performance.now()) {
    this.newest = startStep;
  }

  /** A stage reported finishing `step`. */
  heard(step: number): void {
    if (step <= this.newest) return;
    this.newest = step;
    const at = this.now();
    this.reports.push({ at, step });
    while (this.reports.length > 2 && at - this.reports[0]!.at > RATE_WINDOW_MS) this.reports.shift();
  }

  get newestStep(): number {
    return this.newest;
  }

  /** Steps per second over the recent reports (0 before two reports). */
  get stepsPerSecond(): number {
    const first = this.reports[0];
    const last = this.reports.at(-1);
    if (!first || !last || last.at <= first.at) return 0;
    return ((last.step - first.step) * 1000) / (last.at - first.at);
  }

  /** The step to agree on now. */
  pick(): number {
    const margin = Math.max(AGREED_STEP_MIN_MARGIN, Math.ceil(this.stepsPerSecond * AGREED_STEP_MARGIN_SECONDS));
    return this.newest + margin;
  }
}
