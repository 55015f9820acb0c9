import type { FrameTargets, ReceivedFrame } from '../ring-channel.js';
import { RingError } from '../ring-errors.js';
import { DATA_FRAME_HEADER_BYTES, decodeDataFrameHeader } from './data-frame.js';

/** What the socket needs from us: where to put the next bytes, and what to do once they are there. */
export interface OnReadHooks {
  buffer: () => Uint8Array;
  /** Returns false to pause reading (no free slot for the next frame). */
  callback: (bytesRead: number) => boolean;
}

interface Slot {
  index: number;
  bytes: Uint8Array;
}

/** A received frame held in one of the reader's slots until `release` hands the slot back. */
export interface ReaderFrame extends ReceivedFrame {
  /** Which slot holds the bytes (-1 for an empty frame). */
  slot: number;
  release(): void;
}

interface Waiter {
  resolve: (frame: ReaderFrame) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export interface FrameReaderOptions {
  /** Initial size of each receive slot; slots grow (once) to the largest frame seen. */
  slotBytes: number;
  /** Frames received ahead of the consumer, plus the ones it holds. At least 2. */
  slots: number;
  /**
   * Use these buffers as the slots (e.g. shared memory another thread reads): they never grow, so a
   * frame larger than the smallest of them is refused.
   */
  slotBuffers?: Uint8Array[];
  /** Where growable slots get their memory (default: a plain Uint8Array). */
  allocate?: (bytes: number) => Uint8Array;
  /** A larger frame is a protocol violation (bounds what a peer can make us allocate). */
  maxFrameBytes: number;
  /** Describes the sender in error messages. */
  peerLabel: string;
}

/**
 * Turns the bytes of a data connection into frames without allocating per frame: the socket reads
 * (Node's `onread`) straight into a few reused slots, exactly one frame at a time, so a frame never
 * needs reassembly. A slot is busy until its frame is released; when every slot is busy the socket
 * is paused and TCP pushes back on the sender.
 * The first byte on the connection is the sender's acceptance of our token.
 */
export class FrameReader {
  /** Resolves when the sender has accepted this connection (its first byte). */
  readonly accepted: Promise<void>;
  private resolveAccepted!: () => void;
  private rejectAccepted!: (error: Error) => void;
  private state: 'ack' | 'header' | 'payload' = 'ack';
  private readonly ackByte = new Uint8Array(1);
  private readonly header = new Uint8Array(DATA_FRAME_HEADER_BYTES);
  private headerGot = 0;
  private current: { op: number; frame: number; length: number; got: number; slot: Slot | undefined; target: Uint8Array | undefined } | undefined;
  private targets: FrameTargets | undefined;
  private readonly free: Slot[];
  private readonly ready: ReaderFrame[] = [];
  private readonly fixedSlots: boolean;
  private readonly allocateSlot: (bytes: number) => Uint8Array;
  private waiter: Waiter | undefined;
  private failure: Error | undefined;
  private paused = false;
  private resume: (() => void) | undefined;

  constructor(private readonly options: FrameReaderOptions) {
    const given = options.slotBuffers;
    if ((given?.length ?? options.slots) < 2) throw new RingError('usage', 'a frame reader needs at least 2 slots');
    this.fixedSlots = given !== undefined;
    const allocate = options.allocate ?? ((bytes: number) => new Uint8Array(bytes));
    this.allocateSlot = allocate;
    this.free = given ? given.map((bytes, index) => ({ index, bytes })) : Array.from({ length: options.slots }, (_, index) => ({ index, bytes: allocate(options.slotBytes) }));
    this.accepted = new Promise((resolve, reject) => {
      this.resolveAccepted = resolve;
      this.rejectAccepted = reject;
    });
    this.accepted.catch(() => {});
  }

  /** The largest frame this reader accepts. */
  get maxFrameBytes(): number {
    return this.fixedSlots ? Math.min(this.options.maxFrameBytes, ...this.free.map((slot) => slot.bytes.length)) : this.options.maxFrameBytes;
  }

  /** The `onread` option for net.connect; `resume` restarts a paused socket. */
  hooks(resume: () => void): OnReadHooks {
    this.resume = resume;
    return { buffer: () => this.nextBuffer(), callback: (n) => this.onRead(n) };
  }

  /** The next frame, in arrival order; its bytes stay valid until it is released. */
  next(timeoutMs: number): Promise<ReaderFrame> {
    if (this.failure) return Promise.reject(this.failure);
    const queued = this.ready.shift();
    if (queued) return Promise.resolve(queued);
    if (this.waiter) return Promise.reject(new RingError('usage', 'two receives waiting on one data connection'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new RingError('timeout', `no data from the previous rank (${this.options.peerLabel}) within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** See RingChannel.setFrameTargets: frames with a target are read straight into it, using no slot. */
  setTargets(resolve: FrameTargets | undefined): void {
    this.targets = resolve;
  }

  /** The connection is gone or unusable: every current and future receive fails with `error`. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.rejectAccepted(error);
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  private nextBuffer(): Uint8Array {
    if (this.state === 'ack') return this.ackByte;
    if (this.state === 'header') return this.header.subarray(this.headerGot);
    const current = this.current!;
    return (current.target ?? current.slot!.bytes).subarray(current.got, current.length);
  }

  private onRead(bytesRead: number): boolean {
    if (this.failure) return false;
    switch (this.state) {
      case 'ack':
        if (this.ackByte[0] !== 1) {
          this.fail(new RingError('link', `data connection to ${this.options.peerLabel} was not accepted`));
          return false;
        }
        this.state = 'header';
        this.resolveAccepted();
        return true;
      case 'header':
        this.headerGot += bytesRead;
        if (this.headerGot < DATA_FRAME_HEADER_BYTES) return true;
        this.headerGot = 0;
        return this.startFrame();
      case 'payload': {
        const current = this.current!;
        current.got += bytesRead;
        return current.got < current.length ? true : this.finishFrame();
      }
    }
  }

  private startFrame(): boolean {
    const header = decodeDataFrameHeader(this.header);
    const limit = this.maxFrameBytes;
    if (typeof header === 'string' || header.length > limit) {
      const why = typeof header === 'string' ? header : `frame of ${header.length} bytes exceeds the limit of ${limit}`;
      this.fail(new RingError('link', `protocol violation on the data connection from ${this.options.peerLabel}: ${why}`));
      return false;
    }
    let slot: Slot | undefined;
    const target = header.length > 0 ? this.targets?.({ op: header.op, frame: header.frame }, header.length) : undefined;
    if (target && target.byteLength !== header.length) throw new RingError('usage', 'internal: frame target of the wrong size');
    if (header.length > 0 && !target) {
      // There is always a free slot here: reading pauses after a frame when none is left.
      slot = this.free.pop()!;
      if (slot.bytes.length < header.length) slot.bytes = this.allocateSlot(header.length); // never for fixed slots: checked above
    }
    this.current = { op: header.op, frame: header.frame, length: header.length, got: 0, slot, target };
    this.state = 'payload';
    return header.length > 0 ? true : this.finishFrame();
  }

  private finishFrame(): boolean {
    const { op, frame, length, slot, target } = this.current!;
    this.current = undefined;
    this.state = 'header';
    let released = false;
    const received: ReaderFrame = {
      tag: { op, frame },
      bytes: target ?? (slot ? slot.bytes.subarray(0, length) : EMPTY),
      slot: slot ? slot.index : -1,
      release: () => {
        if (released || !slot) return;
        released = true;
        this.releaseSlot(slot);
      },
    };
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.resolve(received);
    } else {
      this.ready.push(received);
    }
    if (this.free.length > 0) return true;
    this.paused = true;
    return false;
  }

  private releaseSlot(slot: Slot): void {
    this.free.push(slot);
    if (this.paused && !this.failure) {
      this.paused = false;
      this.resume?.();
    }
  }
}

const EMPTY = new Uint8Array(0);
