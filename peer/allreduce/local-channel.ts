import type { FrameTag, ReceivedFrame, RingChannel } from './ring-channel.js';
import { RingError } from './ring-errors.js';

export interface LocalRingOptions {
  /**
   * Deliver each frame's bytes at a varying byte offset (0–3), as a real socket may: exercises the
   * receive paths that must not assume alignment.
   */
  misalign?: boolean;
  /** Deliver after a random number of event-loop turns, so loops interleave differently each run. */
  jitter?: () => number;
}

/**
 * An in-memory ring of `size` channels (rank r sends to r+1, receives from r−1) for running many
 * ranks inside one process: the algorithm's tests, and simulations. Sends copy the bytes, as a real
 * wire does, so a rank that overwrote data still in flight would be caught.
 */
export function createLocalRing(size: number, options: LocalRingOptions = {}): RingChannel[] {
  const mailboxes = Array.from({ length: size }, () => new Mailbox());
  let sent = 0;
  return mailboxes.map((_, rank) => {
    const next = mailboxes[(rank + 1) % size]!;
    const own = mailboxes[rank]!;
    // Deliveries are chained so frames arrive in send order, like on a real connection.
    let lastDelivery = Promise.resolve();
    return {
      send(tag: FrameTag, bytes: Uint8Array): Promise<void> {
        const shift = options.misalign ? sent++ % 4 : 0;
        const copy = new Uint8Array(bytes.byteLength + shift).subarray(shift);
        copy.set(bytes);
        const turns = options.jitter?.() ?? 0;
        lastDelivery = lastDelivery.then(async () => {
          for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
          next.deliver({ tag: { ...tag }, bytes: copy });
        });
        return lastDelivery;
      },
      receive: (timeoutMs: number) => own.take(timeoutMs, rank),
    };
  });
}

class Mailbox {
  private readonly queue: ReceivedFrame[] = [];
  private waiter: ((frame: ReceivedFrame) => void) | undefined;

  deliver(frame: ReceivedFrame): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      waiter(frame);
    } else {
      this.queue.push(frame);
    }
  }

  take(timeoutMs: number, rank: number): Promise<ReceivedFrame> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.waiter) return Promise.reject(new RingError('usage', 'local ring: two receives waiting on one channel'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new RingError('timeout', `rank ${rank}: no frame from the previous rank within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
    });
  }
}
