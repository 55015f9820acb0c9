import type { PeerHandle } from '../../membership/peer-handle.js';
import type { ClusterMessageOf } from '../../protocol/cluster-messages.js';
import type { CoordinatorSnapshot } from '../../state/coordinator-state.js';
import type { PeerRow, PeerStatus } from './view-types.js';

/** What the peer table needs of a connected peer (a `PeerHandle`, plus its link's heartbeat). */
export type LivePeer = Pick<PeerHandle, 'nodeId' | 'hostname' | 'address' | 'status' | 'prepared' | 'problem'> & { lastHeardAt: number | undefined };

interface Known {
  row: PeerRow;
  /** Step rate smoothed over a few steps, and when the last step was heard. */
  stepsPerSecond: number | null;
  lastStepAt: number;
}

/** Without a step for this long, a peer's step rate is shown as unknown rather than stale. */
const STEP_RATE_STALE_MS = 10_000;
const SMOOTHING = 0.3;
/** Dead peers shown at most (the oldest are forgotten first). */
const MAX_DEPARTED = 32;
/** Phases in which the members of the topology are training. */
const TRAINING_PHASES = new Set(['forming-epoch', 'training', 'finishing']);
/** Phases after which a peer leaving is expected, not a death. */
const ENDED_PHASES = new Set(['finished', 'failed', 'stopped']);

/**
 * Every peer the coordinator has seen in this run: the connected ones as the registry sees them,
 * and those whose link closed, marked dead (or "left" once the job was over) with the reason, so a
 * crash stays visible after the registry has forgotten the peer. A peer that comes back under the
 * same node id is alive again.
 */
export class PeerTable {
  private readonly known = new Map<string, Known>();

  constructor(private readonly batchSize: number) {}

  progress(nodeId: string, message: ClusterMessageOf<'progress'>, now = Date.now()): void {
    let known = this.known.get(nodeId);
    if (!known) {
      // Its first report can come before the table was ever drawn; rows() fills in the rest.
      known = { row: emptyRow(nodeId, now), stepsPerSecond: null, lastStepAt: 0 };
      this.known.set(nodeId, known);
    }
    const rate = message.samplesPerSecond / this.batchSize;
    known.stepsPerSecond = known.stepsPerSecond === null || now - known.lastStepAt > STEP_RATE_STALE_MS ? rate : known.stepsPerSecond + SMOOTHING * (rate - known.stepsPerSecond);
    known.lastStepAt = now;
    known.row.step = message.step;
    if (message.rssBytes !== undefined) known.row.memoryBytes = message.rssBytes;
  }

  /**
   * The peer's link closed. What is known of it is kept as it was at that moment (host, backend,
   * its place in the topology), even if the table was never drawn while it lived.
   */
  gone(peer: Pick<PeerRow, 'nodeId' | 'hostname' | 'address' | 'backend'>, reason: string, snapshot: Pick<CoordinatorSnapshot, 'phase' | 'topology'>, now = Date.now()): void {
    let known = this.known.get(peer.nodeId);
    if (!known) {
      known = { row: emptyRow(peer.nodeId, now), stepsPerSecond: null, lastStepAt: 0 };
      this.known.set(peer.nodeId, known);
    }
    if (known.row.status === 'dead' || known.row.status === 'left') return;
    const row = known.row;
    row.hostname ||= peer.hostname;
    row.address ||= peer.address;
    row.backend ??= peer.backend;
    const member = snapshot.topology.find((m) => m.nodeId === peer.nodeId);
    if (member) Object.assign(row, { rank: member.rank, stage: member.stage, role: roleOf(member, snapshot.topology.length) });
    const phase = snapshot.phase;
    row.status = ENDED_PHASES.has(phase) ? 'left' : 'dead';
    row.detail = reason;
    row.since = now;
    if (row.status === 'dead' && member) row.role += ' (lost)';
    known.stepsPerSecond = null;
  }

  /** The table now: live peers first (in arrival order), then the departed, newest first. */
  rows(live: readonly LivePeer[], snapshot: CoordinatorSnapshot, now = Date.now()): PeerRow[] {
    const members = new Map(snapshot.topology.map((member) => [member.nodeId, member]));
    const liveIds = new Set<string>();
    const worldSize = snapshot.topology.length;
    for (const peer of live) {
      liveIds.add(peer.nodeId);
      const member = members.get(peer.nodeId);
      const status = statusOf(peer, member !== undefined, snapshot.phase);
      let known = this.known.get(peer.nodeId);
      if (!known || known.row.status === 'dead' || known.row.status === 'left') {
        known = { row: emptyRow(peer.nodeId, now), stepsPerSecond: null, lastStepAt: 0 };
        this.known.delete(peer.nodeId);
        this.known.set(peer.nodeId, known);
      }
      const row = known.row;
      if (row.status !== status) row.since = now;
      row.status = status;
      row.hostname = peer.hostname;
      row.address = peer.address;
      row.backend = peer.prepared?.backend ?? null;
      row.rank = member?.rank ?? null;
      row.stage = member?.stage ?? null;
      row.role = roleOf(member, worldSize);
      row.detail = status === 'unfit' ? (peer.problem ?? null) : null;
      row.lastHeartbeat = peer.lastHeardAt ?? null;
      row.stepsPerSecond = known.stepsPerSecond !== null && now - known.lastStepAt <= STEP_RATE_STALE_MS ? known.stepsPerSecond : null;
    }
    // A peer the registry no longer lists without a 'gone' (replaced link, …) has left too.
    for (const [nodeId, known] of this.known) {
      if (!liveIds.has(nodeId) && known.row.status !== 'dead' && known.row.status !== 'left') this.gone(known.row, 'no longer connected', snapshot, now);
    }
    const departed = [...this.known.values()].filter((known) => !liveIds.has(known.row.nodeId));
    for (const old of departed.sort((a, b) => a.row.since - b.row.since).slice(0, Math.max(0, departed.length - MAX_DEPARTED))) this.known.delete(old.row.nodeId);
    const liveRows = live.map((peer) => ({ ...this.known.get(peer.nodeId)!.row }));
    const departedRows = departed
      .filter((known) => this.known.has(known.row.nodeId))
      .sort((a, b) => b.row.since - a.row.since)
      .map((known) => ({ ...known.row }));
    return [...liveRows, ...departedRows];
  }
}

function statusOf(peer: LivePeer, isMember: boolean, phase: string): PeerStatus {
  switch (peer.status) {
    case 'joining':
      return 'joining';
    case 'preparing':
      return 'preparing';
    case 'unfit':
      return 'unfit';
    case 'gone':
      return 'dead';
    case 'prepared':
      return isMember && TRAINING_PHASES.has(phase) ? 'training' : 'ready';
  }
}

function roleOf(member: { rank: number; stage: number | null } | undefined, worldSize: number): string {
  if (!member) return 'waiting';
  return member.stage === null ? `ring rank ${member.rank} of ${worldSize}` : `stage ${member.stage} (rank ${member.rank})`;
}

function emptyRow(nodeId: string, now: number): PeerRow {
  return {
    nodeId,
    hostname: '',
    address: '',
    backend: null,
    role: 'waiting',
    rank: null,
    stage: null,
    status: 'joining',
    detail: null,
    step: null,
    stepsPerSecond: null,
    lastHeartbeat: null,
    memoryBytes: null,
    since: now,
  };
}
