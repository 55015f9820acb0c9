import { TransportError } from '../errors.js';
import type { DeadlineQueue, Expirable } from './deadline-queue.js';

/**
 * One promise someone is awaiting, with the timeout every wait in ringpipe must have. Settles once:
 * by a value, by a failure (link closed), or by its deadline. A link's waits share one timer
 * (`deadlines`, see deadline-queue.ts); a wait without a queue (the handshake) has its own.
 */
export class PendingWait<T> implements Expirable {
  readonly promise: Promise<T>;
  readonly deadline: number;
  deadlineSlot = -1;
  private resolveFn!: (value: T) => void;
  private rejectFn!: (error: Error) => void;
  private timer: NodeJS.Timeout | undefined;
  private settled = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly describeTimeout: (timeoutMs: number) => string,
    private readonly onTimeout: (wait: PendingWait<T>) => void,
    private readonly deadlines?: DeadlineQueue,
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    this.deadline = performance.now() + timeoutMs;
    if (!Number.isFinite(timeoutMs)) return;
    if (deadlines) {
      deadlines.add(this);
    } else {
      this.timer = setTimeout(() => this.expire(), timeoutMs);
    }
  }

  get isSettled(): boolean {
    return this.settled;
  }

  /** The deadline has passed (called by the timer or the deadline queue). */
  expire(): void {
    if (this.settled) return;
    this.onTimeout(this);
    this.reject(new TransportError('timeout', this.describeTimeout(this.timeoutMs)));
  }

  /** The wait can no longer time out (it still settles by value or failure). */
  stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.deadlineSlot >= 0) this.deadlines?.remove(this);
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
    this.stopTimer();
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
