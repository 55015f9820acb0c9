import { EventEmitter } from 'node:events';
import type { Logger } from '../../../shared/log/logger.js';
import type { TimelineData } from '../../../peer/pipeline/timeline/timeline.js';
import type { RegistryEvents } from '../../membership/peer-registry.js';
import type { CoordinatorSnapshot, CoordinatorStateEvents } from '../../state/coordinator-state.js';
import { CheckpointList } from './checkpoint-list.js';
import type { DashboardSource } from './dashboard-source.js';
import { PeerTable, type LivePeer } from './peer-table.js';
import { pipelineGantt } from './pipeline-gantt.js';
import { StepSeries } from './step-series.js';
import { distillationView } from './distillation-view.js';
import type { ControlState, ControlsView, DashboardView, PeerRow, PipelineView, StepPoint, TopologyMemberView, TopologyView } from './view-types.js';

export interface DashboardModelEvents {
  /** Something in the view changed (the feed decides how often to send it). */
  changed: [];
  point: [StepPoint];
  /** A peer's link closed while the job was running. */
  peerDied: [string];
  checkpointWritten: [number];
}

const PAUSABLE_PHASES = new Set(['forming-epoch', 'training', 'recovering']);
/** A round needs the peers to itself: it can start while the job waits for them (before it trains, or instead of it). */
const DISTILLABLE_PHASES = new Set(['waiting-for-peers']);

/**
 * Everything the dashboard page and /metrics show, kept current from the coordinator's state and
 * its peer registry's events. `view()` is the page's JSON; `points` the training series.
 */
export class DashboardModel extends EventEmitter<DashboardModelEvents> {
  private readonly peers: PeerTable;
  private readonly series = new StepSeries();
  private readonly checkpointList: CheckpointList;
  private pipeline: PipelineView | null = null;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly source: DashboardSource,
    private readonly log: Logger,
  ) {
    super();
    this.peers = new PeerTable(source.job.batchSize);
    this.checkpointList = new CheckpointList(source.store);
    this.series.seed(source.state.lossCurve);
    this.onRegistry('progress', (peer, message) => {
      this.series.report(message);
      this.peers.progress(peer.nodeId, message);
    });
    this.onRegistry('gone', (peer, reason) => {
      const snapshot = source.state.snapshot();
      this.peers.gone({ nodeId: peer.nodeId, hostname: peer.hostname, address: peer.address, backend: peer.prepared?.backend ?? null }, reason, snapshot);
      if (!['finished', 'failed', 'stopped'].includes(snapshot.phase)) this.emit('peerDied', peer.nodeId);
      this.emit('changed');
    });
    this.onRegistry('prepared', () => this.emit('changed'));
    this.onState('change', () => this.emit('changed'));
    this.onState('loss', (point) => {
      this.emit('point', this.series.complete(point));
      this.emit('changed');
    });
    this.onState('checkpoint', (checkpoint) => {
      this.emit('checkpointWritten', checkpoint.step);
      void this.refreshCheckpoints();
    });
    void this.refreshCheckpoints();
  }

  get points(): readonly StepPoint[] {
    return this.series.points;
  }

  /** The folder of a listed checkpoint, for downloads. */
  checkpointFolder(step: number): string | undefined {
    return this.checkpointList.folderOf(step);
  }

  /** Stage timelines of the newest pipeline mini-batches (from `peer/pipeline/timeline/`). */
  setPipelineTimelines(timelines: readonly TimelineData[]): void {
    this.pipeline = pipelineGantt(timelines);
    this.emit('changed');
  }

  view(now = Date.now()): DashboardView {
    const snapshot = this.source.state.snapshot();
    const { job } = this.source;
    const live: LivePeer[] = this.source.registry.all().map((peer) => ({
      nodeId: peer.nodeId,
      hostname: peer.hostname,
      address: peer.address,
      status: peer.status,
      prepared: peer.prepared,
      problem: peer.problem,
      lastHeardAt: peer.link.lastHeardAt,
    }));
    const peers = this.peers.rows(live, snapshot, now);
    const last = this.series.points.at(-1);
    return {
      job: {
        cluster: snapshot.cluster,
        jobName: snapshot.jobName,
        runId: snapshot.runId,
        model: job.model,
        batchSize: job.batchSize,
        mode: job.mode,
        phase: snapshot.phase,
        detail: snapshot.detail,
        epoch: snapshot.epoch,
        step: snapshot.step,
        totalSteps: snapshot.totalSteps,
        samplesPerSecond: snapshot.phase === 'training' ? (last?.samplesPerSecond ?? snapshot.samplesPerSecond) : 0,
        lastLoss: snapshot.lastLoss ?? null,
        testAccuracy: snapshot.result?.accuracy ?? null,
        address: snapshot.address ?? null,
      },
      peers,
      topology: topologyOf(snapshot, peers),
      checkpoints: this.checkpointList.rows,
      pipeline: this.pipeline,
      distillation: distillationView(snapshot.distillation, this.source.distillation !== undefined, this.newestCheckpointFolder()),
      controls: this.controls(snapshot),
      serverTime: now,
    };
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private controls(snapshot: CoordinatorSnapshot): ControlsView {
    const paused = this.source.paused;
    const over = ['finished', 'failed', 'stopped'].includes(snapshot.phase);
    const off = (reason: string) => ({ enabled: false, reason });
    return {
      pause: paused ? off('already paused') : PAUSABLE_PHASES.has(snapshot.phase) ? { enabled: true, reason: null } : off(`nothing to pause while ${snapshot.phase}`),
      resume: paused && !over ? { enabled: true, reason: null } : off('not paused'),
      checkpoint: snapshot.phase === 'training' && !paused ? { enabled: true, reason: null } : off('only while training'),
      distill: this.distillControl(snapshot),
    };
  }

  private newestCheckpointFolder(): string | undefined {
    const newest = this.checkpointList.rows[0];
    return newest ? this.checkpointList.folderOf(newest.step) : undefined;
  }

  private distillControl(snapshot: CoordinatorSnapshot): ControlState {
    const rounds = this.source.distillation;
    if (!rounds) return { enabled: false, reason: 'this coordinator does not run distillation rounds' };
    if (rounds.busy) return { enabled: false, reason: 'a distillation round is running' };
    if (snapshot.phase === 'starting') return { enabled: false, reason: 'the coordinator is still starting' };
    if (['finished', 'failed', 'stopped'].includes(snapshot.phase)) return { enabled: false, reason: `the job is over (${snapshot.phase})` };
    if (!DISTILLABLE_PHASES.has(snapshot.phase)) return { enabled: false, reason: `the peers are busy with the job (${snapshot.phase}); a round can start while the coordinator waits for peers, before training` };
    return { enabled: true, reason: null };
  }

  private async refreshCheckpoints(): Promise<void> {
    try {
      await this.checkpointList.refresh();
      this.emit('changed');
    } catch (error) {
      this.log.warn({ err: error }, `dashboard: cannot list the checkpoints (${(error as Error).message})`);
    }
  }

  private onRegistry<K extends keyof RegistryEvents>(event: K, handler: (...args: RegistryEvents[K]) => void): void {
    this.subscribe(this.source.registry, event, handler as (...args: unknown[]) => void);
  }

  private onState<K extends keyof CoordinatorStateEvents>(event: K, handler: (...args: CoordinatorStateEvents[K]) => void): void {
    this.subscribe(this.source.state, event, handler as (...args: unknown[]) => void);
  }

  private subscribe(emitter: object, event: string, handler: (...args: unknown[]) => void): void {
    // Typed by the two helpers above; Node's EventEmitter<T> typings do not take a generic key.
    const target = emitter as EventEmitter;
    target.on(event, handler);
    this.unsubscribe.push(() => target.off(event, handler));
  }
}

function topologyOf(snapshot: CoordinatorSnapshot, peers: readonly PeerRow[]): TopologyView {
  const members = [...snapshot.topology].sort((a, b) => a.rank - b.rank);
  const status = new Map(peers.map((peer) => [peer.nodeId, peer.status]));
  const stateOf = (nodeId: string): TopologyMemberView['state'] => {
    const peer = status.get(nodeId);
    return peer === 'left' ? 'left' : peer === undefined || peer === 'dead' ? 'dead' : 'alive';
  };
  return {
    epoch: snapshot.epoch,
    kind: members.some((member) => member.stage !== null) ? 'pipeline' : 'ring',
    members: members.map((member) => ({ nodeId: member.nodeId, rank: member.rank, stage: member.stage, ...(member.replica !== undefined ? { replica: member.replica } : {}), state: stateOf(member.nodeId) })),
  };
}
