import { EventEmitter } from 'node:events';
import type { DistillationView } from '../distillation/distillation-rounds.js';
import type { LossPoint } from '../metrics/loss-log.js';
import type { TopologyMember } from '../protocol/cluster-messages.js';

export type CoordinatorPhase = 'starting' | 'waiting-for-peers' | 'forming-epoch' | 'training' | 'recovering' | 'paused' | 'finishing' | 'finished' | 'failed' | 'stopped';

export interface PeerView {
  nodeId: string;
  address: string;
  hostname: string;
  status: string;
  backend: string | undefined;
  step: number;
}

export interface CheckpointView {
  step: number;
  dir: string;
  savedAt: string;
}

export interface CoordinatorSnapshot {
  cluster: string;
  jobName: string;
  runId: string;
  address: string | undefined;
  phase: CoordinatorPhase;
  /** Why the phase is what it is, in words (e.g. "waiting for 1 more peer (min 2)"). */
  detail: string;
  epoch: number;
  topology: TopologyMember[];
  peers: PeerView[];
  step: number;
  totalSteps: number;
  samplesPerSecond: number;
  lastLoss: number | undefined;
  checkpoints: CheckpointView[];
  result: { accuracy: number; loss: number; step: number; checkpoint: string | undefined } | undefined;
  /** Distillation rounds: the one running (stage, progress) and the reports of finished ones. */
  distillation?: DistillationView;
}

export interface CoordinatorStateEvents {
  change: [CoordinatorSnapshot];
  loss: [LossPoint];
  checkpoint: [CheckpointView];
}

const RECENT_LOSS_POINTS = 2_000;

/**
 * Everything a dashboard (or a test) needs to show the coordinator's view: read `snapshot()`,
 * listen to `change`, `loss` and `checkpoint`. The coordinator is its only writer.
 */
export class CoordinatorState extends EventEmitter<CoordinatorStateEvents> {
  private value: CoordinatorSnapshot;
  /** The recent loss curve (older points are in the run's metrics.jsonl). */
  readonly lossCurve: LossPoint[] = [];

  constructor(initial: Pick<CoordinatorSnapshot, 'cluster' | 'jobName' | 'runId'>) {
    super();
    this.value = {
      ...initial,
      address: undefined,
      phase: 'starting',
      detail: '',
      epoch: 0,
      topology: [],
      peers: [],
      step: 0,
      totalSteps: 0,
      samplesPerSecond: 0,
      lastLoss: undefined,
      checkpoints: [],
      result: undefined,
    };
  }

  snapshot(): CoordinatorSnapshot {
    return structuredClone(this.value);
  }

  update(changes: Partial<CoordinatorSnapshot>): void {
    this.value = { ...this.value, ...changes };
    this.emit('change', this.snapshot());
  }

  addLossPoint(point: LossPoint): void {
    this.lossCurve.push(point);
    if (this.lossCurve.length > RECENT_LOSS_POINTS) this.lossCurve.splice(0, this.lossCurve.length - RECENT_LOSS_POINTS);
    this.value = { ...this.value, lastLoss: point.loss };
    this.emit('loss', point);
  }

  addCheckpoint(view: CheckpointView, keep: number): void {
    this.value = { ...this.value, checkpoints: [...this.value.checkpoints, view].slice(-keep) };
    this.emit('checkpoint', view);
    this.emit('change', this.snapshot());
  }
}
