import type { HealthStatus } from './health-status.js';

/** What the peer process tells its readiness about; every method is a change of what it is doing. */
export interface PeerReadinessReporter {
  /** No coordinator link: looking for one or reconnecting. */
  searching(problem?: string): void;
  /** Linked to the coordinator, loading the job or waiting for an epoch. */
  connected(coordinator: string): void;
  assigned(epoch: number, rank: number, worldSize: number): void;
  /** The epoch started: this peer is a member of the current ring. */
  training(epoch: number): void;
  /** The epoch ended (finished, stopped to re-form, failed); ignored when a newer epoch already began. */
  epochEnded(epoch: number, how: string): void;
  /** The peer is done with the cluster (job over, refused, gave up). */
  left(reason: string): void;
}

/**
 * Peer readiness: ready exactly while the peer is linked to its coordinator and training in the
 * current membership epoch. Between epochs (a peer was lost or joined, the ring is being
 * re-formed) and while it waits for the rendezvous, it is not ready, which is what `kubectl get
 * pods` / `kubectl wait --for=condition=Ready` should show.
 */
export class PeerReadiness implements PeerReadinessReporter {
  private current: HealthStatus = { ok: false, reason: 'starting' };
  private epoch = 0;
  private rank = '';

  status(): HealthStatus {
    return { ...this.current };
  }

  searching(problem?: string): void {
    this.set(false, problem ? `looking for the coordinator (last problem: ${problem})` : 'looking for the coordinator');
  }

  connected(coordinator: string): void {
    this.set(false, `connected to the coordinator ${coordinator}; waiting to be given a place in an epoch`);
  }

  assigned(epoch: number, rank: number, worldSize: number): void {
    this.epoch = epoch;
    this.rank = `rank ${rank} of ${worldSize}`;
    this.set(false, `assigned to epoch ${epoch} as ${this.rank}; waiting for it to start`);
  }

  training(epoch: number): void {
    if (epoch !== this.epoch) return;
    this.set(true, `training in epoch ${epoch} as ${this.rank}`);
  }

  epochEnded(epoch: number, how: string): void {
    if (epoch !== this.epoch) return;
    this.set(false, `epoch ${epoch} ended (${how}); waiting for the next`);
  }

  left(reason: string): void {
    this.set(false, `left the cluster: ${reason}`);
  }

  private set(ok: boolean, reason: string): void {
    this.current = { ok, reason };
  }
}
