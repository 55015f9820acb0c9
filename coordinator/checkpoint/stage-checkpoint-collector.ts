import type { Logger } from '../../shared/log/logger.js';
import type { PeerHandle } from '../membership/peer-handle.js';
import type { ClusterMessageOf } from '../protocol/cluster-messages.js';
import type { TransferFile } from '../protocol/file-transfer.js';
import type { CheckpointStore, StoredCheckpoint } from './checkpoint-store.js';
import { CheckpointWriteQueue } from './checkpoint-write-queue.js';
import { assembleStageParts, STAGE_MODEL_FILE, STAGE_OPTIMIZER_FILE, STAGE_PART_FILE, STAGE_WEIGHTS_FILE } from './pipeline-checkpoint.js';
import { withReportedPosition, type TrainingStateRecord } from './training-state-record.js';
import { MAX_UPLOAD_FILE_BYTES, UploadQueue } from './upload-queue.js';

const PART_FILES = new Set([STAGE_PART_FILE, STAGE_WEIGHTS_FILE, STAGE_OPTIMIZER_FILE, STAGE_MODEL_FILE]);
/** Steps whose parts are still incomplete; older ones are given up (a stage missed the request). */
const MAX_OPEN_STEPS = 4;

/**
 * The pipeline's side of checkpointing: every stage uploads its part of a step; once all K parts of
 * one step are in, they are joined into one ordinary checkpoint (pipeline-checkpoint.ts) and written
 * by the store, atomically with its manifest, exactly as a data-parallel checkpoint is.
 */
export class StageCheckpointCollector {
  private readonly queue: CheckpointWriteQueue;
  private readonly uploads = new UploadQueue();
  /** step → parts by stage, for the current number of stages. */
  private readonly open = new Map<number, { parts: Map<number, TransferFile[]>; message: ClusterMessageOf<'stage-checkpoint'>; dataPosition?: TrainingStateRecord['dataPosition'] }>();
  private stages = 0;

  constructor(
    store: CheckpointStore,
    private readonly log: Logger,
    private readonly recordFor: (message: { epoch: number; step: number; loss: number | null }) => TrainingStateRecord,
    private readonly onWritten: (stored: StoredCheckpoint) => void,
  ) {
    this.queue = new CheckpointWriteQueue(store, log);
  }

  /** A new epoch with `stages` stages: parts of earlier epochs can no longer be completed. */
  beginEpoch(stages: number): void {
    this.stages = stages;
    this.open.clear();
  }

  handle(peer: PeerHandle, message: ClusterMessageOf<'stage-checkpoint'>): void {
    const unknown = message.files.find((file) => !PART_FILES.has(file.name) || file.bytes > MAX_UPLOAD_FILE_BYTES);
    if (unknown || message.stage >= Math.max(1, this.stages)) {
      this.log.error({ peer: peer.label, files: message.files.map((f) => f.name), stage: message.stage }, 'malformed stage checkpoint upload; dropping the peer');
      peer.link.close('malformed stage checkpoint upload');
      return;
    }
    const received = this.uploads.receive(peer, message);
    const work = (async () => {
      const files = await received;
      const entry = this.open.get(message.step) ?? { parts: new Map<number, TransferFile[]>(), message };
      entry.parts.set(message.stage, files);
      // The last stage knows the loss; keep its figure for the training state.
      if (message.loss !== null) entry.message = message;
      // Stage 0 reads the data: its part carries the iterator's position.
      if (message.dataPosition) entry.dataPosition = message.dataPosition;
      this.open.set(message.step, entry);
      for (const step of [...this.open.keys()].sort((a, b) => a - b).slice(0, Math.max(0, this.open.size - MAX_OPEN_STEPS))) {
        this.log.warn({ step }, `checkpoint of step ${step} given up: not every stage sent its part`);
        this.open.delete(step);
      }
      if (entry.parts.size < this.stages) return;
      this.open.delete(message.step);
      const assembled = assembleStageParts([...entry.parts.values()]);
      const record = withReportedPosition(this.recordFor(entry.message), entry.dataPosition);
      await this.queue.write(message.step, assembled, record, (stored) => {
        this.log.info({ step: stored.step, dir: stored.dir, stages: this.stages }, 'checkpoint saved (all stages)');
        this.onWritten(stored);
      });
    })().catch((error: unknown) => {
      this.log.warn({ err: error, peer: peer.label, step: message.step, stage: message.stage }, 'stage checkpoint not saved; the previous checkpoint stays the newest');
    });
    this.queue.track(work);
  }

  /** Resolves when every part announced so far is received and every complete checkpoint written. */
  idle(): Promise<void> {
    return this.queue.idle();
  }
}
