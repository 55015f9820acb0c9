import type { Socket } from 'node:net';
import type { FrameTag, ReceivedFrame, RingChannel } from '../ring-channel.js';
import { RingError } from '../ring-errors.js';
import { encodeDataFrameHeader } from './data-frame.js';
import type { FrameReader } from './frame-reader.js';

/**
 * The ring channel over two plain TCP connections (opened and authenticated by data-plane-setup.ts):
 * one we write frames to (the next rank), one a FrameReader reads from (the previous rank).
 * A send writes header and payload with one writev straight from the caller's memory and resolves
 * when the kernel has taken the bytes; nothing is copied or allocated per frame in JS.
 */
export class TcpRingChannel implements RingChannel {
  private failure: Error | undefined;
  private readonly pendingSends = new Set<(error: Error) => void>();

  constructor(
    private readonly toNext: Socket,
    private readonly fromPrevious: Socket,
    private readonly reader: FrameReader,
    private readonly labels: { next: string; previous: string },
    private readonly sendTimeoutMs = 60_000,
  ) {
    const lost = (which: 'next' | 'previous') => (error?: Error) => this.fail(connectionLost(which, labels[which], error));
    toNext.on('error', lost('next'));
    toNext.on('close', () => lost('next')());
    fromPrevious.on('error', lost('previous'));
    fromPrevious.on('close', () => lost('previous')());
  }

  send(tag: FrameTag, bytes: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
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

  receive(timeoutMs: number): Promise<ReceivedFrame> {
    return this.reader.receive(timeoutMs);
  }

  /** Stops everything with `error` (a link died, the ring is being torn down). */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.reader.fail(error);
    for (const settle of [...this.pendingSends]) settle(error);
    this.toNext.destroy();
    this.fromPrevious.destroy();
  }

  close(): void {
    this.fail(new RingError('broken', 'the ring was closed'));
  }
}

function connectionLost(which: 'next' | 'previous', label: string, error?: Error & { code?: string }): RingError {
  const reset = error?.code === 'ECONNRESET' || error?.code === 'EPIPE';
  const what = !error ? 'closed' : reset ? 'was reset (peer process exited or network dropped)' : `failed: ${error.message}`;
  return new RingError('link', `data connection ${which === 'next' ? 'to the next' : 'from the previous'} rank (${label}) ${what}`);
}
