import type { PeerHandle } from '../membership/peer-handle.js';
import type { ClusterMessage, ClusterMessageOf } from '../protocol/cluster-messages.js';
import type { PeerRegistry } from '../membership/peer-registry.js';

/**
 * Every wait of a round has an end: a phase fails at once when a member leaves or reports
 * `distill-failed`, when the round is cancelled, or when no member has been heard from for
 * `silenceMs`. `run(work)` races the phase's work against all of these.
 */
export class PhaseGuard {
  private readonly failure: Promise<never>;
  private fail!: (error: Error) => void;
  private lastHeard = Date.now();
  private readonly cleanups: (() => void)[] = [];

  constructor(
    private readonly members: readonly PeerHandle[],
    registry: PeerRegistry,
    round: number,
    what: string,
    silenceMs: number,
    /** The tasks of this phase: failures reported for other tasks (an aborted attempt's) are not this phase's. */
    frameSteps?: ReadonlySet<number>,
  ) {
    this.failure = new Promise<never>((_, reject) => (this.fail = reject));
    // A rejection nobody awaits yet must not crash the process; run() re-raises it.
    this.failure.catch(() => {});
    const memberSet = new Set(members);
    const onGone = (peer: PeerHandle, why: string): void => {
      if (memberSet.has(peer)) this.fail(new Error(`${peer.label} left while ${what} (${why})`));
    };
    registry.on('gone', onGone);
    this.cleanups.push(() => registry.off('gone', onGone));
    for (const peer of members) {
      this.cleanups.push(
        peer.link.onControl('distill-failed', (message) => {
          if (message.round !== round) return;
          if (frameSteps && message.frameStep !== undefined && !frameSteps.has(message.frameStep)) return;
          this.fail(new Error(`${peer.label} failed while ${what}: ${message.reason}`));
        }),
      );
      this.cleanups.push(peer.link.onControl('distill-progress', (message) => message.round === round && this.touch()));
      if (!peer.alive) this.fail(new Error(`${peer.label} is gone`));
    }
    const timer = setInterval(() => {
      if (Date.now() - this.lastHeard > silenceMs) this.fail(new Error(`no word from the members for ${Math.round(silenceMs / 1000)} s while ${what}`));
    }, 1_000);
    this.cleanups.push(() => clearInterval(timer));
  }

  /** Something arrived from a member: it is alive and working. */
  touch(): void {
    this.lastHeard = Date.now();
  }

  cancel(reason: string): void {
    this.fail(new Error(`cancelled: ${reason}`));
  }

  /**
   * The next `type` message from `peer` that `match` accepts. A subscription rather than the link's
   * nextControl: a failed phase must leave no waiter behind that would swallow a later round's message.
   */
  next<T extends ClusterMessage['type']>(peer: PeerHandle, type: T, match: (message: ClusterMessageOf<T>) => boolean): Promise<ClusterMessageOf<T>> {
    return this.run(
      new Promise<ClusterMessageOf<T>>((resolve) => {
        const unsubscribe = peer.link.onControl(type, (message) => {
          if (!match(message as ClusterMessageOf<T>)) return;
          this.touch();
          unsubscribe();
          resolve(message as ClusterMessageOf<T>);
        });
        this.cleanups.push(unsubscribe);
      }),
    );
  }

  run<T>(work: Promise<T>): Promise<T> {
    // The work may still reject after the guard has failed; that second error is not news.
    work.catch(() => {});
    return Promise.race([work, this.failure]);
  }

  get peers(): readonly PeerHandle[] {
    return this.members;
  }

  dispose(): void {
    for (const cleanup of this.cleanups) cleanup();
  }
}
