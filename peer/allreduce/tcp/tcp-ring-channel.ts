import type { Socket } from 'node:net';
import type { FrameTag, FrameTargets, ReceivedFrame, RingChannel } from '../ring-channel.js';
import { RingError } from '../ring-errors.js';
import { connectionLost } from './connection-lost.js';
import { encodeDataFrameHeader } from './data-frame.js';
import type { FrameReader, ReaderFrame } from './frame-reader.js';

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
  private readonly pendingSends = new Set<(error: Error) => void>();

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

  send(tag: FrameTag, bytes: Uint8Array): Promise<void> {
    const failure = this.failure ?? this.sendFailure;
    if (failure) return Promise.reject(failure);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new RingError('timeout', `sending to the next rank (${this.labels.next}) stalled for ${this.sendTimeoutMs} ms: it is not reading`)),
        this.sendTimeoutMs,
      );
      const settle = (error?: Error | null): void => {
        if (!this.pendingSends.delete(settle)) return;
        clearTimeout(timer);
        if (error) reject(error instanceof RingError ? error : connectionLost('next', this.labels.next, error));
        else resolve();
      };
      this.pendingSends.add(settle);
      this.toNext.cork();
      this.toNext.write(encodeDataFrameHeader({ op: tag.op, frame: tag.frame, length: bytes.byteLength }));
      this.toNext.write(bytes, (error) => settle(error));
      this.toNext.uncork();
    });
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
    for (const settle of [...this.pendingSends]) settle(error);
  }

  close(): void {
    this.fail(new RingError('broken', 'the ring was closed'));
  }
}

