import type { RoundReport } from '../../distillation/round-report.js';
import type { RoundSpecInput } from '../../distillation/round-spec.js';
import type { ClusterJob } from '../../job/cluster-job.js';
import type { PeerRegistry } from '../../membership/peer-registry.js';
import type { CoordinatorState } from '../../state/coordinator-state.js';
import type { CheckpointSource } from './checkpoint-list.js';
import type { TimelineData } from '../../../peer/pipeline/timeline/timeline.js';

/**
 * What the dashboard reads from, and asks of, the coordinator. `Coordinator` is one; the dashboard
 * only listens to what the coordinator already publishes (state, registry events, the checkpoint
 * store) and calls its public controls.
 */
export interface DashboardSource {
  readonly state: CoordinatorState;
  readonly job: ClusterJob;
  readonly registry: PeerRegistry;
  readonly store: CheckpointSource;
  readonly paused: boolean;
  /** Stops training after the next agreed step and holds the next epoch back; false when not possible now. */
  pause(reason: string): boolean;
  resume(reason: string): boolean;
  /** Asks rank 0 for a checkpoint after its current step; false when no epoch is training. */
  requestCheckpoint(reason: string): boolean;
  /** Pipeline mode: the stages' timelines of the newest mini-batch, for the Gantt panel (returns an unsubscribe). */
  onStageTimelines?(listener: (timelines: TimelineData[]) => void): () => void;
  /** Distillation rounds on the same peers (their progress and reports come through `state`). */
  readonly distillation?: {
    readonly busy: boolean;
    /** Throws at once, saying why, when the spec is invalid or a round cannot start now. */
    start(input: RoundSpecInput): { round: Promise<number>; report: Promise<RoundReport> };
  };
}
