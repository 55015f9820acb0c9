import { TransportError } from '../errors.js';
import type { TensorHeader } from '../wire/tensor-header.js';
import type { SendCredit } from './flow-control.js';
import type { WireEndpoint } from './wire-endpoint.js';

/** One tensor frame waiting to go out (plain data: no closures per frame on this hot path). */
export interface SendJob {
  header: TensorHeader;
  /** The payload bytes (a Buffer view of the caller's memory, as the socket takes it without converting); their count is taken from the peer's flow-control credit. */
  payload: Buffer;
  /** Absolute time (Date.now()) after which the job fails instead of waiting longer. */
  deadline: number;
  timeoutMs: number;
}

const RECHECK_MS = 100;

interface QueuedJob extends SendJob {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Sends tensor frames in call order with back-pressure: a frame waits until the peer has credit for
 * it and the socket holds at most `highWaterBytes` unsent bytes, so a slow or stalled peer never makes
 * us queue without bound. A send settles once its bytes are written to the kernel (only then may the
 * caller reuse its buffer). Control messages do not pass through here: see Link.sendControl.
 */
export class OrderedSender {
  private readonly queue: QueuedJob[] = [];
  /** Written, waiting for the socket's callback; a stream calls back in write order. */
  private readonly inFlight: QueuedJob[] = [];
  private pumping = false;
  private wakeUp: (() => void) | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly endpoint: WireEndpoint,
    private readonly credit: SendCredit,
    private readonly highWaterBytes: number,
    /** The message of a send that timed out waiting. */
    private readonly describeTimeout: (timeoutMs: number) => string,
  ) {}

  send(header: TensorHeader, payload: Buffer, deadline: number, timeoutMs: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const queued: QueuedJob = { header, payload, deadline, timeoutMs, resolve, reject };
      // Fast path: nothing waiting ahead of it and room to send — no pump, no extra promise.
      if (this.queue.length === 0 && !this.pumping && this.canSend(queued)) {
        this.credit.take(queued.payload.length);
        this.write(queued);
        return;
      }
      this.queue.push(queued);
      if (!this.pumping) void this.pump();
    });
  }

  /** Something that can unblock the head job happened (credit arrived, a write completed). */
  wake(): void {
    const wakeUp = this.wakeUp;
    this.wakeUp = undefined;
    wakeUp?.();
  }

  /** The link is gone: every queued and in-flight send fails with `error`. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const job of this.queue.splice(0)) job.reject(error);
    for (const job of this.inFlight.splice(0)) job.reject(error);
    this.wake();
  }

  private canSend(job: QueuedJob): boolean {
    return this.credit.canTake(job.payload.length) && this.endpoint.bufferedAmount <= this.highWaterBytes;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.failure) {
        const job = this.queue[0] as QueuedJob;
        if (!this.canSend(job)) {
          const remaining = job.deadline - Date.now();
          if (remaining <= 0) {
            if (this.queue[0] === job) this.queue.shift();
            job.reject(new TransportError('timeout', this.describeTimeout(job.timeoutMs)));
            continue;
          }
          // Woken by credit or a completed write; the cap re-checks now and then in case bytes
          // drained without a callback of ours (pongs, credits).
          await this.sleepUntilWoken(Math.min(remaining, RECHECK_MS));
          continue;
        }
        this.queue.shift();
        this.credit.take(job.payload.length);
        this.write(job);
      }
    } finally {
      this.pumping = false;
    }
  }

  private write(job: QueuedJob): void {
    try {
      if (this.inFlight.length > 0) {
        // Earlier frames still wait for the socket: this one settles after them, in order.
        this.endpoint.sendTensor(job.header, job.payload, this.written);
        this.inFlight.push(job);
        return;
      }
      // Nothing of ours pending: write without a callback (Node's corked flush then needs no closure
      // of its own) and, when the kernel took every byte at once — the usual case on a fast link —
      // the send is done now. Otherwise a zero-length write behind it says when the bytes are out.
      if (this.endpoint.sendTensor(job.header, job.payload, undefined)) {
        job.resolve();
        return;
      }
      this.endpoint.afterPendingWrites(this.written);
      this.inFlight.push(job);
    } catch (error) {
      job.reject(error as Error);
    }
  }

  /** The socket's callback for the oldest write (one function for all frames: no closure per frame). */
  private readonly written = (error?: Error | null): void => {
    const job = this.inFlight.shift();
    if (!job) return; // failed already: fail() settled every in-flight job
    if (error) job.reject(this.failure ?? new TransportError('closed', `send failed: ${error.message}`));
    else job.resolve();
    this.wake();
  };

  private sleepUntilWoken(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
