import type { Logger } from '../../shared/log/logger.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { ClusterJob } from '../job/cluster-job.js';
import type { TrainingPlan } from '../job/training-plan.js';
import type { PeerHandle } from '../membership/peer-handle.js';
import type { PeerRegistry, RegistryEvents } from '../membership/peer-registry.js';
import type { LossLog } from '../metrics/loss-log.js';
import type { ClusterMessageOf } from '../protocol/cluster-messages.js';
import type { CoordinatorState } from '../state/coordinator-state.js';

export type EpochOutcome =
  | { kind: 'finished'; result: Omit<ClusterMessageOf<'result'>, 'type'> }
  | { kind: 'stopped' }
  | { kind: 'failed'; reason: string; progressed: boolean }
  | { kind: 'cancelled'; reason: string };

/** What every epoch controller works with, whatever the mode; each adds its own parts. */
export interface EpochBaseContext {
  registry: PeerRegistry;
  store: CheckpointStore;
  lossLog: LossLog;
  state: CoordinatorState;
  job: ClusterJob;
  plan: TrainingPlan;
  log: Logger;
}

/** How long members get to answer an assignment beyond the step timeout. */
export const READY_GRACE_MS = 30_000;
/** How long a member may take to receive the checkpoint it restores from. */
export const RESTORE_TIMEOUT_MS = 120_000;
/** How long the coordinator waits for the final checkpoint before it reports the result. */
export const FINAL_CHECKPOINT_TIMEOUT_MS = 120_000;

/** What the coordinator asks of an epoch controller, whatever the mode (data-parallel ring, pipeline). */
export interface EpochRunner {
  run(epoch: number, members: PeerHandle[]): Promise<EpochOutcome>;
  /** Stop after a step all members agree on (pause); false when no epoch runs. */
  requestStop(reason: string): boolean;
  /** End the running epoch now (Ctrl+C). */
  cancel(reason: string): void;
  /** Checkpoint soon (on demand, by time); false when no epoch runs. */
  requestCheckpoint(reason: string): boolean;
}

/**
 * The bookkeeping every epoch controller needs around one epoch: registry listeners removed at the
 * end, timers cleared, one outcome however many things go wrong, a member leaving ends the epoch,
 * and a watchdog that fails the epoch when the members fall silent.
 */
export class EpochWatch {
  readonly outcome: Promise<EpochOutcome>;
  progressed = false;
  private settleOutcome!: (outcome: EpochOutcome) => void;
  private done = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly listeners: [keyof RegistryEvents, (...args: never[]) => void][] = [];
  private lastHeard = Date.now();

  constructor(
    private readonly registry: PeerRegistry,
    readonly members: ReadonlySet<PeerHandle>,
    /** Silence this long (no report from any member) fails the epoch. */
    silenceMs: number,
  ) {
    this.outcome = new Promise((resolve) => (this.settleOutcome = resolve));
    this.listen('gone', (peer, why) => {
      if (members.has(peer)) this.fail(`${peer.label} left (${why})`);
    });
    this.every(1_000, () => {
      if (Date.now() - this.lastHeard > silenceMs) this.fail(`no word from the members for ${Math.round(silenceMs / 1000)} s`);
    });
  }

  get settled(): boolean {
    return this.done;
  }

  /** A member said something: the watchdog starts over. */
  heard(): void {
    this.lastHeard = Date.now();
  }

  listen<E extends keyof RegistryEvents>(event: E, handler: (...args: RegistryEvents[E]) => void): void {
    this.registry.on(event, handler as never);
    this.listeners.push([event, handler as never]);
  }

  /** Listens to a message of this epoch from a member (others, and other epochs', are ignored); hearing it feeds the watchdog. */
  fromMembers<E extends 'ready' | 'progress' | 'epoch-ended' | 'evaluating' | 'result' | 'stage-report' | 'stage-checkpoint'>(event: E, epoch: number, handler: (...args: RegistryEvents[E]) => void): void {
    this.listen(event, ((peer: PeerHandle, message: { epoch: number }) => {
      if (!this.members.has(peer) || message.epoch !== epoch) return;
      this.heard();
      (handler as (peer: PeerHandle, message: unknown) => void)(peer, message);
    }) as never);
  }

  after(ms: number, fn: () => void): void {
    this.timers.push(setTimeout(fn, ms));
  }

  every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(fn, ms));
  }

  /** Resolves after `ms` (cleared with the epoch). */
  delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  finish(outcome: EpochOutcome): void {
    if (this.done) return;
    this.done = true;
    this.settleOutcome(outcome);
  }

  fail(reason: string): void {
    this.finish({ kind: 'failed', reason, progressed: this.progressed });
  }

  /** Removes every listener and timer. */
  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    for (const [event, handler] of this.listeners) this.registry.off(event, handler as never);
  }
}

/** Waits for the epoch's outcome; after a failure or cancel, tells the members still there to stop. */
export async function closeEpoch(epoch: number, members: readonly PeerHandle[], outcome: Promise<EpochOutcome>, log: Logger): Promise<EpochOutcome> {
  const result = await outcome;
  if (result.kind === 'failed' || result.kind === 'cancelled') {
    const reason = result.kind === 'failed' ? result.reason : `cancelled: ${result.reason}`;
    log.warn({ epoch, reason }, `epoch ${epoch} ended early`);
    await Promise.all(members.filter((peer) => peer.alive).map((peer) => peer.send({ type: 'abort', epoch, reason: reason.slice(0, 1_900) })));
  }
  return result;
}
