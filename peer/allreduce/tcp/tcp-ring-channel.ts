import type { Socket } from 'node:net';
import type { FrameTag, FrameTargets, ReceivedFrame, RingChannel } from '../ring-channel.js';
import { RingError } from '../ring-errors.js';
import { connectionLost } from './connection-lost.js';
import { encodeDataFrameHeader } from './data-frame.js';
import type { FrameReader, ReaderFrame } from './frame-reader.js';

interface PendingSend {
  resolve: () => void;
  reject: (error: Error) => void;
  /** performance.now() when handed to the socket. */
  since: number;
}

/**
 * The ring channel over two plain TCP connections (opened and authenticated by data-plane-setup.ts):
 * one we write frames to (the next rank), one a FrameReader reads from (the previous rank).
 * A send writes header and payload with one writev straight from the caller's memory and resolves
 * when the kernel has taken the bytes; nothing is copied or allocated per frame in JS.
 *
 * Each direction fails on its own: a neighbour that finished the last collective and closed is
 * normal (ranks do not finish at the same instant), so a closed connection only fails what still
 * needs it — sends in progress or later for the next rank, receives waiting or later for the previous.
 */
export class TcpRingChannel implements RingChannel {
  private failure: Error | undefined;
  private sendFailure: Error | undefined;
  /** The frame the ring is working on: its slot goes back to the reader on the next receive. */
  private held: ReaderFrame | undefined;
  /** Sends handed to the socket, oldest first. */
  private readonly pendingSends: PendingSend[] = [];
  private watchdog: NodeJS.Timeout | undefined;

  constructor(
    private readonly toNext: Socket,
    private readonly fromPrevious: Socket,
    private readonly reader: FrameReader,
    private readonly labels: { next: string; previous: string },
    private readonly sendTimeoutMs = 60_000,
  ) {
    const nextLost = (error?: Error) => this.failSends(connectionLost('next', labels.next, error));
    toNext.on('error', nextLost);
    toNext.on('close', () => nextLost());
    const previousLost = (error?: Error) => reader.fail(connectionLost('previous', labels.previous, error));
    fromPrevious.on('error', previousLost);
    fromPrevious.on('close', () => previousLost());
  }

  /** What the previous rank may send us (the next rank's reader has the same limit when joined alike). */
  get maxFrameBytes(): number {
    return this.reader.maxFrameBytes;
  }

  send(tag: FrameTag, bytes: Uint8Array): Promise<void> {
    const failure = this.failure ?? this.sendFailure;
    if (failure) return Promise.reject(failure);
    return new Promise<void>((resolve, reject) => {
      // Writes on one socket finish in order, so the pending sends are a FIFO and one watchdog
      // timer (on the oldest) replaces a timer per frame.
      const pending: PendingSend = { resolve, reject, since: performance.now() };
      this.pendingSends.push(pending);
      this.armWatchdog();
      this.toNext.cork();
      this.toNext.write(encodeDataFrameHeader({ op: tag.op, frame: tag.frame, length: bytes.byteLength }));
      this.toNext.write(bytes, this.onWritten);
      this.toNext.uncork();
    });
  }

  /** The write callback of the oldest pending send (shared: no closure per frame). */
  private readonly onWritten = (error?: Error | null): void => {
    if (error) {
      this.failSends(connectionLost('next', this.labels.next, error));
      return;
    }
    const done = this.pendingSends.shift();
    if (!done) return; // already failed
    if (this.pendingSends.length === 0) this.disarmWatchdog();
    done.resolve();
  };

  private armWatchdog(): void {
    if (this.watchdog) return;
    this.watchdog = setTimeout(() => this.checkStall(), this.sendTimeoutMs);
  }

  private disarmWatchdog(): void {
    if (!this.watchdog) return;
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  /** Fails every pending send if the oldest has waited `sendTimeoutMs`; otherwise looks again when it would. */
  private checkStall(): void {
    this.watchdog = undefined;
    const oldest = this.pendingSends[0];
    if (!oldest) return;
    const waited = performance.now() - oldest.since;
    if (waited >= this.sendTimeoutMs) {
      this.failSends(new RingError('timeout', `sending to the next rank (${this.labels.next}) stalled for ${this.sendTimeoutMs} ms: it is not reading`));
      return;
    }
    this.watchdog = setTimeout(() => this.checkStall(), this.sendTimeoutMs - waited);
  }

  async receive(timeoutMs: number): Promise<ReceivedFrame> {
    this.held?.release();
    this.held = await this.reader.next(timeoutMs);
    return this.held;
  }

  setFrameTargets(resolve: FrameTargets | undefined): void {
    this.reader.setTargets(resolve);
  }

  /** Stops everything with `error` (a link died, the ring is being torn down). */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.reader.fail(error);
    this.failSends(error);
    this.toNext.destroy();
    this.fromPrevious.destroy();
  }

  private failSends(error: Error): void {
    this.sendFailure ??= error;
    this.disarmWatchdog();
    for (const pending of this.pendingSends.splice(0)) pending.reject(error);
  }

  close(): void {
    this.fail(new RingError('broken', 'the ring was closed'));
  }
}

