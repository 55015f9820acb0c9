import { protocolError } from '../errors.js';

/**
 * Credit-based flow control for tensor bytes, as in HTTP/2: the receiver announces a window in the
 * handshake and hands credit back as the application consumes frames. A receiver that stops reading
 * therefore stops the sender after one window, while its socket keeps being read, so heartbeats and
 * control messages still get through (pausing the socket would make a slow reader look dead).
 */
export class SendCredit {
  constructor(
    private available: number,
    private readonly window: number,
  ) {}

  get bytes(): number {
    return this.available;
  }

  canTake(bytes: number): boolean {
    return bytes <= this.available;
  }

  take(bytes: number): void {
    this.available -= bytes;
  }

  /** The peer's credit message; more than its own window would mean it lost count: a violation. */
  grant(bytes: number): void {
    if (this.available + bytes > this.window) {
      throw protocolError(`peer granted credit beyond its window (${this.available} + ${bytes} > ${this.window})`);
    }
    this.available += bytes;
  }
}

export class ReceiveWindow {
  /** Bytes received and not yet credited back: what the peer believes is still in flight. */
  private outstanding = 0;
  private consumedNotCredited = 0;

  constructor(
    readonly window: number,
    /** Largest frame the peer may send (our maxTensorBytes): below that much credit it is stalled. */
    private readonly maxFrameBytes: number,
    private readonly sendCredit: (bytes: number) => void,
  ) {}

  received(bytes: number): void {
    this.outstanding += bytes;
    if (this.outstanding > this.window) {
      throw protocolError(`peer sent ${this.outstanding} tensor bytes without credit (window ${this.window})`);
    }
  }

  /**
   * Hands credit back in batches of a quarter window (one small message per 8 MiB by default, not
   * one per frame), or at once when the sender may be stalled for lack of credit.
   */
  consumed(bytes: number): void {
    this.consumedNotCredited += bytes;
    if (this.consumedNotCredited === 0) return;
    const senderMayBeStalled = this.window - this.outstanding < this.maxFrameBytes;
    if (senderMayBeStalled || this.consumedNotCredited >= this.window / 4) {
      const credit = this.consumedNotCredited;
      this.consumedNotCredited = 0;
      this.outstanding -= credit;
      this.sendCredit(credit);
    }
  }
}
