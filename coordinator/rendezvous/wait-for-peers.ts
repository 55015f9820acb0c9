import type { PeerRegistry } from '../membership/peer-registry.js';

export interface WaitForPeersOptions {
  min: number;
  max: number;
  /** With at least `min` (but fewer than `max`) peers, wait this long for more. */
  graceMs: number;
  /** Give up after this long without `min` peers. */
  timeoutMs: number;
  /** What we are waiting for, for the error ("to start the job", "to continue after losing peers"). */
  purpose: string;
  /** How peers join, for the error message. */
  howToJoin: string;
  /** Called whenever the count changes (for the state/dashboard). */
  onChange?(detail: string): void;
  /** Resolves early (returning 'cancelled') when this settles. */
  cancelled?: Promise<void>;
}

export class RendezvousTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RendezvousTimeoutError';
  }
}

/**
 * Waits until enough peers are prepared: at once when `max` are, after the grace period when at
 * least `min` are (the grace restarts if the count drops below `min`), and rejects with a message
 * naming who is there, who is still loading, and who was refused when `timeoutMs` passes first.
 */
export function waitForPeers(registry: PeerRegistry, options: WaitForPeersOptions): Promise<'ready' | 'cancelled'> {
  return new Promise((resolve, reject) => {
    let graceTimer: NodeJS.Timeout | undefined;
    const finish = (error: Error | undefined, value: 'ready' | 'cancelled' = 'ready'): void => {
      clearTimeout(graceTimer);
      clearTimeout(timeout);
      registry.off('prepared', check);
      registry.off('gone', check);
      if (error) reject(error);
      else resolve(value);
    };
    const timeout = setTimeout(() => {
      const count = registry.prepared().length;
      finish(
        new RendezvousTimeoutError(
          `gave up after ${Math.round(options.timeoutMs / 1000)} s waiting for peers ${options.purpose}: ${count} of the ${options.min} needed (peers.min) are ready — ${registry.describe()}. ${options.howToJoin}`,
        ),
      );
    }, options.timeoutMs);
    function check(): void {
      const count = registry.prepared().length;
      if (count >= options.max) {
        finish(undefined);
        return;
      }
      if (count >= options.min) {
        options.onChange?.(`${count} peers ready (min ${options.min}, max ${options.max}); starting in ${Math.round(options.graceMs / 1000)} s unless more join`);
        if (options.graceMs <= 0) finish(undefined);
        else graceTimer ??= setTimeout(() => finish(undefined), options.graceMs);
        return;
      }
      clearTimeout(graceTimer);
      graceTimer = undefined;
      options.onChange?.(`waiting for ${options.min - count} more peer${options.min - count === 1 ? '' : 's'} (${count} ready, min ${options.min})`);
    }
    registry.on('prepared', check);
    registry.on('gone', check);
    options.cancelled?.then(() => finish(undefined, 'cancelled'));
    check();
  });
}

/** `waitForPeers`, with a timeout handed back as the error instead of thrown: the caller turns it into a failed outcome. */
export function waitForPeersOrTimeout(registry: PeerRegistry, options: WaitForPeersOptions): Promise<'ready' | 'cancelled' | RendezvousTimeoutError> {
  return waitForPeers(registry, options).catch((error: unknown) => {
    if (error instanceof RendezvousTimeoutError) return error;
    throw error;
  });
}
