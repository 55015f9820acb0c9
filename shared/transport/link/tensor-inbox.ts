import type { TensorArray } from '../wire/dtype.js';
import { tensorPayloadBytes, type TensorHeader } from '../wire/tensor-header.js';
import { checkReceiveTarget, viewPayload } from '../wire/tensor-payload.js';
import type { DeadlineQueue } from './deadline-queue.js';
import type { PayloadWriter } from './message-assembler.js';
import { PendingWait } from './pending-wait.js';

const NO_PIECES: readonly Uint8Array[] = Object.freeze([]);

/** A received tensor frame: its header and its elements (a view, or the filled part of `into`). */
export interface TensorFrame<T extends TensorArray = TensorArray> {
  header: TensorHeader;
  data: T;
}

interface QueuedFrame {
  header: TensorHeader;
  /** The payload as views into the socket's read chunks, in order (not copied yet). */
  pieces: readonly Uint8Array[];
  byteLength: number;
}

interface TensorWaiter {
  wait: PendingWait<TensorFrame>;
  into: TensorArray | undefined;
}

/**
 * The frame whose payload is arriving right now. Until a waiter claims it, it only keeps views of
 * the bytes (the socket's read chunks are never reused, see PayloadWriter); once claimed, what
 * arrived is copied into the waiter's memory and the rest is written there directly. So each
 * payload byte is copied once whether the application asked for the frame before, during or after
 * its arrival. (Copying unclaimed bytes into a pooled buffer right away, as before, copied most of
 * a small frame twice: its first bytes usually arrive in the read that completes the previous
 * frame, before the application can post its next wait.)
 */
class IncomingTensor implements PayloadWriter {
  filled = 0;
  waiter: TensorWaiter | undefined;
  /** Set once claimed: the waiter's memory for this payload. */
  target: Uint8Array | undefined;
  /** Views of what arrived while unclaimed (allocated only then). */
  pieces: Uint8Array[] | undefined;

  constructor(
    readonly header: TensorHeader,
    readonly byteLength: number,
  ) {}

  write(chunk: Buffer, start: number, end: number): void {
    if (this.target) chunk.copy(this.target, this.filled, start, end);
    else (this.pieces ??= []).push(chunk.subarray(start, end));
    this.filled += end - start;
  }

  /** Redirects the payload into `waiter`'s memory (caller checked that it fits). */
  claim(waiter: TensorWaiter): void {
    const destination = destinationIn(this.header, this.byteLength, waiter);
    copyPieces(this.pieces ?? NO_PIECES, destination);
    this.pieces = undefined;
    this.target = destination;
    this.waiter = waiter;
    // Once bytes land in the caller's memory the frame must finish: its timeout no longer applies
    // (a peer that stalls mid-frame is caught by the heartbeat, and then the wait fails).
    waiter.wait.stopTimer();
  }
}

/** The caller's `into` at the frame's offset, or a new buffer that will become the caller's view. */
function destinationIn(header: TensorHeader, bytes: number, waiter: TensorWaiter): Uint8Array {
  const into = waiter.into;
  if (into === undefined) return new Uint8Array(bytes);
  return new Uint8Array(into.buffer, into.byteOffset + header.offset * into.BYTES_PER_ELEMENT, bytes);
}

/**
 * A queued frame's views pin whole read chunks. Keeps them only while that costs at most twice the
 * payload (e.g. 64 KiB spread over two reads); otherwise (a small frame in a big read, which a peer
 * could repeat) copies the payload into a buffer of its own, so queued memory stays within twice
 * the flow-control window.
 */
function compactIfWasteful(pieces: readonly Uint8Array[], byteLength: number): readonly Uint8Array[] {
  let pinned = 0;
  for (const piece of pieces) pinned += piece.buffer.byteLength;
  if (pinned <= 2 * byteLength) return pieces;
  const whole = new Uint8Array(byteLength);
  copyPieces(pieces, whole);
  return [whole];
}

function copyPieces(pieces: readonly Uint8Array[], target: Uint8Array): void {
  let at = 0;
  // Indexed: for…of allocated an iterator per frame here.
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i] as Uint8Array;
    target.set(piece, at);
    at += piece.length;
  }
}

/**
 * Received tensor frames in arrival order, and where each payload is written while it arrives:
 * straight into the memory of the application's oldest waiter when there is one (its `into`
 * buffer, or a new buffer that becomes its view); otherwise the frame is queued as views of the
 * socket's read chunks and copied once, into `into` (or a fresh aligned buffer), when taken.
 * Queued bytes are bounded by the flow-control window; `consumed` is told every payload byte the
 * application has taken, which returns credit to the sender. Waits time out through the link's
 * shared deadline queue.
 */
export class TensorInbox {
  private readonly queue: QueuedFrame[] = [];
  private readonly waiters: TensorWaiter[] = [];
  private incoming: IncomingTensor | undefined;
  private queuedBytesTotal = 0;

  constructor(
    private readonly consumed: (bytes: number) => void,
    /** The message of a wait that timed out (made once, not per wait: this is a hot path). */
    private readonly describeTimeout: (timeoutMs: number) => string,
    private readonly deadlines: DeadlineQueue,
  ) {}

  private readonly forgetExpired = (expired: PendingWait<TensorFrame>): void => {
    const index = this.waiters.findIndex((waiter) => waiter.wait === expired);
    if (index >= 0) this.waiters.splice(index, 1);
  };

  get queuedBytes(): number {
    return this.queuedBytesTotal;
  }

  /** A header arrived: returns where its payload goes. */
  destinationFor(header: TensorHeader): PayloadWriter {
    const incoming = new IncomingTensor(header, tensorPayloadBytes(header));
    // FIFO: only when nothing older is queued may a waiter claim this frame.
    const waiter = this.queue.length === 0 ? this.firstWaiterThatFits(header) : undefined;
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
      const data = waiter.into ? waiter.into.subarray(header.offset, header.offset + header.length) : viewPayload(header, incoming.target as Uint8Array);
      waiter.wait.resolve({ header, data });
      this.consumed(incoming.byteLength);
      return;
    }
    this.queue.push({ header, pieces: compactIfWasteful(incoming.pieces ?? NO_PIECES, incoming.byteLength), byteLength: incoming.byteLength });
    this.queuedBytesTotal += incoming.byteLength;
    this.serveWaiters();
  }

  next<T extends TensorArray>(into: T | undefined, timeoutMs: number): Promise<TensorFrame<T>> {
    if (this.queue.length > 0) {
      // Throws (the frame stays queued) if `into` cannot hold it.
      return Promise.resolve(this.takeHead(into) as TensorFrame<T>);
    }
    const wait = new PendingWait<TensorFrame>(timeoutMs, this.describeTimeout, this.forgetExpired, this.deadlines);
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
    // Drop queued payloads so a dead link does not pin the socket's chunks.
    this.queue.length = 0;
    this.queuedBytesTotal = 0;
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

  /** Removes the oldest queued frame and returns it copied into `into`, or as an aligned view (throws, keeping it, if `into` does not fit). */
  private takeHead(into: TensorArray | undefined): TensorFrame {
    const head = this.queue[0] as QueuedFrame;
    const { header, pieces } = head;
    let data: TensorArray;
    if (into !== undefined) {
      checkReceiveTarget(header, into);
      copyPieces(pieces, new Uint8Array(into.buffer, into.byteOffset + header.offset * into.BYTES_PER_ELEMENT, head.byteLength));
      data = into.subarray(header.offset, header.offset + header.length);
    } else if (pieces.length === 1) {
      // One piece: a view of the read chunk itself (copied only if misaligned).
      data = viewPayload(header, pieces[0] as Uint8Array);
    } else {
      const whole = new Uint8Array(head.byteLength);
      copyPieces(pieces, whole);
      data = viewPayload(header, whole);
    }
    this.queue.shift();
    this.queuedBytesTotal -= head.byteLength;
    this.consumed(head.byteLength);
    return { header, data };
  }
}
