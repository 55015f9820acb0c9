import type { TensorArray } from '../wire/dtype.js';
import { tensorPayloadBytes, type TensorHeader } from '../wire/tensor-header.js';
import { checkReceiveTarget, copyPayloadInto, viewPayload } from '../wire/tensor-payload.js';
import { BufferPool } from './buffer-pool.js';
import type { PayloadWriter } from './message-assembler.js';
import { PendingWait } from './pending-wait.js';

const EMPTY = new Uint8Array(0);

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
 * The frame whose payload is arriving right now. It writes into a pooled buffer until a waiter
 * claims it, then into that waiter's memory (moving what already arrived), so a frame that starts
 * arriving a moment before the application asks for it is still copied (almost) only once.
 */
class IncomingTensor implements PayloadWriter {
  filled = 0;
  waiter: TensorWaiter | undefined;

  constructor(
    readonly header: TensorHeader,
    public target: Uint8Array,
    private readonly pooled: boolean,
    private readonly pool: BufferPool,
  ) {}

  get byteLength(): number {
    return this.target.byteLength;
  }

  write(bytes: Uint8Array): void {
    this.target.set(bytes, this.filled);
    this.filled += bytes.length;
  }

  /** Redirects the rest of the payload into `waiter`'s memory (caller checked that it fits). */
  claim(waiter: TensorWaiter): void {
    const destination = destinationIn(this.header, waiter);
    destination.set(this.target.subarray(0, this.filled));
    if (this.pooled) this.pool.give(this.target);
    this.target = destination;
    this.waiter = waiter;
    // Once bytes land in the caller's memory the frame must finish: its timeout no longer applies
    // (a peer that stalls mid-frame is caught by the heartbeat, and then the wait fails).
    waiter.wait.stopTimer();
  }
}

/** The caller's `into` at the frame's offset, or a new buffer that will become the caller's view. */
function destinationIn(header: TensorHeader, waiter: TensorWaiter): Uint8Array {
  const bytes = tensorPayloadBytes(header);
  const into = waiter.into;
  if (into === undefined) return new Uint8Array(bytes);
  return new Uint8Array(into.buffer, into.byteOffset + header.offset * into.BYTES_PER_ELEMENT, bytes);
}

/**
 * Received tensor frames in arrival order, and where each payload is written while it arrives:
 * straight into the memory of the application's oldest waiter when there is one (its `into`
 * buffer, or a new buffer that becomes its view), otherwise into a pooled buffer that is queued and
 * later copied into `into` (then pooled again) or handed over as the view. Queued bytes are bounded
 * by the flow-control window; `consumed` is told every payload byte the application has taken,
 * which returns credit to the sender.
 */
export class TensorInbox {
  private readonly queue: QueuedFrame[] = [];
  private readonly waiters: TensorWaiter[] = [];
  private readonly pool: BufferPool;
  private incoming: IncomingTensor | undefined;
  private queuedBytesTotal = 0;

  constructor(
    private readonly consumed: (bytes: number) => void,
    poolBytes: number,
    /** The message of a wait that timed out (made once, not per wait: this is a hot path). */
    private readonly describeTimeout: (timeoutMs: number) => string,
  ) {
    this.pool = new BufferPool(poolBytes);
  }

  private readonly forgetExpired = (expired: PendingWait<TensorFrame>): void => {
    const index = this.waiters.findIndex((waiter) => waiter.wait === expired);
    if (index >= 0) this.waiters.splice(index, 1);
  };

  get queuedBytes(): number {
    return this.queuedBytesTotal;
  }

  /** A header arrived: returns where its payload goes. */
  destinationFor(header: TensorHeader): PayloadWriter {
    // FIFO: only when nothing older is queued may a waiter claim this frame.
    const waiter = this.queue.length === 0 ? this.firstWaiterThatFits(header) : undefined;
    const incoming = waiter
      ? new IncomingTensor(header, EMPTY, false, this.pool)
      : new IncomingTensor(header, this.pool.take(tensorPayloadBytes(header)), true, this.pool);
    if (waiter) incoming.claim(waiter);
    this.incoming = incoming;
    return incoming;
  }

  /** The payload of the incoming frame is complete. */
  complete(header: TensorHeader): void {
    const incoming = this.incoming as IncomingTensor;
    this.incoming = undefined;
    const waiter = incoming.waiter;
    if (waiter) {
      const data = waiter.into ? waiter.into.subarray(header.offset, header.offset + header.length) : viewPayload(header, incoming.target);
      waiter.wait.resolve({ header, data });
      this.consumed(incoming.target.byteLength);
      return;
    }
    this.queue.push({ header, payload: incoming.target });
    this.queuedBytesTotal += incoming.target.byteLength;
    this.serveWaiters();
  }

  next<T extends TensorArray>(into: T | undefined, timeoutMs: number): Promise<TensorFrame<T>> {
    if (this.queue.length > 0) {
      // Throws (the frame stays queued) if `into` cannot hold it.
      return Promise.resolve(this.takeHead(into) as TensorFrame<T>);
    }
    const wait = new PendingWait<TensorFrame>(timeoutMs, this.describeTimeout, this.forgetExpired);
    const waiter: TensorWaiter = { wait, into };
    const incoming = this.incoming;
    if (incoming && !incoming.waiter && this.waiters.length === 0 && this.fits(incoming.header, waiter)) {
      incoming.claim(waiter);
    } else {
      this.waiters.push(waiter);
    }
    return wait.promise as Promise<TensorFrame<T>>;
  }

  failAll(error: Error): void {
    this.incoming?.waiter?.wait.reject(error);
    this.incoming = undefined;
    for (const waiter of this.waiters.splice(0)) waiter.wait.reject(error);
    // Drop queued payloads so a dead link does not pin their memory.
    this.queue.length = 0;
    this.queuedBytesTotal = 0;
    this.pool.clear();
  }

  /** Oldest live waiter whose buffer can take this frame; those whose buffer cannot are failed. */
  private firstWaiterThatFits(header: TensorHeader): TensorWaiter | undefined {
    while (this.waiters.length > 0) {
      const candidate = this.waiters.shift() as TensorWaiter;
      if (candidate.wait.isSettled) continue;
      if (this.fits(header, candidate)) return candidate;
    }
    return undefined;
  }

  private fits(header: TensorHeader, waiter: TensorWaiter): boolean {
    if (waiter.into === undefined) return true;
    try {
      checkReceiveTarget(header, waiter.into);
      return true;
    } catch (error) {
      waiter.wait.reject(error as Error);
      return false;
    }
  }

  private serveWaiters(): void {
    while (this.queue.length > 0 && this.waiters.length > 0) {
      const waiter = this.waiters.shift() as TensorWaiter;
      if (waiter.wait.isSettled) continue;
      try {
        waiter.wait.resolve(this.takeHead(waiter.into));
      } catch (error) {
        waiter.wait.reject(error as Error);
      }
    }
  }

  /** Removes the oldest queued frame and returns it as a view or copied into `into` (throws, keeping it, if `into` does not fit). */
  private takeHead(into: TensorArray | undefined): TensorFrame {
    const head = this.queue[0] as QueuedFrame;
    let frame: TensorFrame;
    if (into !== undefined) {
      frame = { header: head.header, data: copyPayloadInto(head.header, head.payload, into) };
      this.pool.give(head.payload);
    } else {
      // The pooled buffer becomes the caller's: it is not given back.
      frame = { header: head.header, data: viewPayload(head.header, head.payload) };
    }
    this.queue.shift();
    this.queuedBytesTotal -= head.payload.length;
    this.consumed(head.payload.length);
    return frame;
  }
}
