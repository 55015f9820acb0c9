import type { Logger } from '../log/logger.js';

/**
 * Warnings caused by remote peers go through here: a flood of bad connections must not turn into a
 * flood of log lines (disk, CPU, and drowning the one line that matters). Lets `perSecond` through
 * each second and then reports how many were suppressed.
 */
export class LogLimiter {
  private windowStart = 0;
  private countInWindow = 0;
  private suppressed = 0;

  constructor(
    readonly log: Logger,
    private readonly perSecond = 20,
  ) {}

  warn(fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.windowStart >= 1_000) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, 'suppressed similar warnings about misbehaving peers');
      this.windowStart = now;
      this.countInWindow = 0;
      this.suppressed = 0;
    }
    if (this.countInWindow < this.perSecond) {
      this.countInWindow++;
      this.log.warn(fields, message);
    } else {
      this.suppressed++;
    }
  }
}
