import { TransportError } from '../errors.js';

/**
 * One promise someone is awaiting, with the timeout every wait in ringpipe must have. Settles once:
 * by a value, by a failure (link closed), or by its timer.
 */
export class PendingWait<T> {
  readonly promise: Promise<T>;
  private resolveFn!: (value: T) => void;
  private rejectFn!: (error: Error) => void;
  private timer: NodeJS.Timeout | undefined;
  private settled = false;

  constructor(timeoutMs: number, describeTimeout: (timeoutMs: number) => string, onTimeout: (wait: PendingWait<T>) => void) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    if (Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(() => {
        if (this.settled) return;
        onTimeout(this);
        this.reject(new TransportError('timeout', describeTimeout(timeoutMs)));
      }, timeoutMs);
    }
  }

  get isSettled(): boolean {
    return this.settled;
  }

  /** The wait can no longer time out (it still settles by value or failure). */
  stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  resolve(value: T): void {
    if (this.settle()) this.resolveFn(value);
  }

  reject(error: Error): void {
    if (this.settle()) this.rejectFn(error);
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    return true;
  }
}

/** Validates a caller's timeout: a positive number of milliseconds (Infinity allowed, explicitly). */
export function checkTimeout(timeoutMs: number, what: string): number {
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs <= 0) {
    throw new TransportError('usage', `${what}: timeoutMs must be a positive number of milliseconds, got ${String(timeoutMs)}`);
  }
  return timeoutMs;
}
