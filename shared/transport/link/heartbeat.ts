import type { WireEndpoint } from './wire-endpoint.js';

/**
 * Liveness: pings the peer every interval and declares it dead when not a single byte (data, ping,
 * pong) has arrived for the timeout. Any received byte counts, so a long frame still arriving on a
 * slow link keeps the peer alive. If our own event loop was blocked (a long synchronous step), the
 * silence is ours, not the peer's: the clock restarts instead of blaming the peer.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private lastHeardAt = Date.now();
  private lastPingAt = 0;
  private lastTickAt = Date.now();
  private lastBytesRead: number;
  private readonly tickMs: number;

  constructor(
    private readonly endpoint: WireEndpoint,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly onDead: (silentMs: number) => void,
  ) {
    this.lastBytesRead = endpoint.socket.bytesRead;
    // Check more often than we ping, so death is noticed soon after the timeout.
    this.tickMs = Math.max(20, Math.min(intervalMs, Math.floor(timeoutMs / 5)));
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  /** When anything last arrived from the peer (Date.now() clock, updated at each tick). */
  get lastHeard(): number {
    return this.lastHeardAt;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = Date.now();
    const bytesRead = this.endpoint.socket.bytesRead;
    const loopStalled = now - this.lastTickAt > this.tickMs + this.timeoutMs / 2;
    this.lastTickAt = now;
    if (bytesRead !== this.lastBytesRead || loopStalled) {
      this.lastBytesRead = bytesRead;
      this.lastHeardAt = now;
    }
    const silentMs = now - this.lastHeardAt;
    if (silentMs >= this.timeoutMs) {
      this.stop();
      this.onDead(silentMs);
      return;
    }
    if (now - this.lastPingAt >= this.intervalMs) {
      this.lastPingAt = now;
      this.endpoint.sendPing();
    }
  }
}
