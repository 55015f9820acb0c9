import type { TensorArray } from '../wire/dtype.js';
import type { TensorHeader } from '../wire/tensor-header.js';
import { checkReceiveTarget, copyPayloadInto, viewPayload } from '../wire/tensor-payload.js';
import { PendingWait } from './pending-wait.js';

/** A received tensor frame: its header and its elements (a view, or the filled part of `into`). */
export interface TensorFrame<T extends TensorArray = TensorArray> {
  header: TensorHeader;
  data: T;
}

interface QueuedFrame {
  header: TensorHeader;
  payload: Uint8Array;
}

interface TensorWaiter {
  wait: PendingWait<TensorFrame>;
  into: TensorArray | undefined;
}

/**
 * Received tensor frames in arrival order. A waiter takes the next frame; without a waiter frames
 * queue (bounded by the flow-control window, see flow-control.ts). `consumed` is told every payload
 * byte the application has taken, which is what returns credit to the sender.
 */
export class TensorInbox {
  private readonly queue: QueuedFrame[] = [];
  private readonly waiters: TensorWaiter[] = [];
  private queuedBytesTotal = 0;

  constructor(private readonly consumed: (bytes: number) => void) {}

  get queuedBytes(): number {
    return this.queuedBytesTotal;
  }

  get queuedFrames(): number {
    return this.queue.length;
  }

  deliver(header: TensorHeader, payload: Uint8Array): void {
    while (this.waiters.length > 0) {
      const waiter = this.waiters.shift() as TensorWaiter;
      if (waiter.wait.isSettled) continue;
      try {
        const frame = materialize(header, payload, waiter.into);
        waiter.wait.resolve(frame);
        this.consumed(payload.length);
        return;
      } catch (error) {
        // The waiter's buffer does not fit this frame: fail that wait, offer the frame to the next.
        waiter.wait.reject(error as Error);
      }
    }
    this.queue.push({ header, payload });
    this.queuedBytesTotal += payload.length;
  }

  next<T extends TensorArray>(into: T | undefined, timeoutMs: number, describeTimeout: () => string): Promise<TensorFrame<T>> {
    const head = this.queue[0];
    if (head) {
      // Throws (frame stays queued) if `into` cannot hold it.
      const frame = materialize(head.header, head.payload, into);
      this.queue.shift();
      this.queuedBytesTotal -= head.payload.length;
      this.consumed(head.payload.length);
      return Promise.resolve(frame as TensorFrame<T>);
    }
    const wait = new PendingWait<TensorFrame>(timeoutMs, describeTimeout, (expired) => {
      const index = this.waiters.findIndex((waiter) => waiter.wait === expired);
      if (index >= 0) this.waiters.splice(index, 1);
    });
    this.waiters.push({ wait, into });
    return wait.promise as Promise<TensorFrame<T>>;
  }

  failAll(error: Error): void {
    for (const waiter of this.waiters.splice(0)) waiter.wait.reject(error);
    // Drop queued payloads so a dead link does not pin their memory.
    this.queue.length = 0;
    this.queuedBytesTotal = 0;
  }
}

function materialize(header: TensorHeader, payload: Uint8Array, into: TensorArray | undefined): TensorFrame {
  if (into === undefined) return { header, data: viewPayload(header, payload) };
  checkReceiveTarget(header, into);
  return { header, data: copyPayloadInto(header, payload, into) };
}
