import type { ClusterJob } from '../../coordinator/job/cluster-job.js';
import type { ClusterMessageOf } from '../../coordinator/protocol/cluster-messages.js';
import { describeFiles, sendFiles } from '../../coordinator/protocol/file-transfer.js';
import type { Logger } from '../../shared/log/logger.js';
import type { CoordinatorLink } from './coordinator-link.js';
import { exportCheckpointFiles } from './checkpoint-files.js';
import type { TrainingState } from './training-state.js';

const UPLOAD_TIMEOUT_MS = 120_000;

type DataPosition = NonNullable<ClusterMessageOf<'checkpoint'>['dataPosition']>;

/**
 * Rank 0's side of checkpointing. All ranks hold the same state, so one upload is a complete
 * checkpoint. The state is captured between two steps (a consistent, committed step), then sent
 * while training goes on. One upload at a time (`start` returns false while one is on the wire;
 * callers that must not skip a checkpoint `settle()` first).
 */
export class CheckpointUploader {
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly link: CoordinatorLink,
    private readonly job: ClusterJob,
    private readonly log: Logger,
  ) {}

  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  /**
   * Captures the state now (between steps) and uploads it in the background. False if busy.
   * `dataPosition`: where the data iterator stands after the committed step, saved with it.
   */
  async start(state: TrainingState, epoch: number, loss: number | null, dataPosition?: DataPosition): Promise<boolean> {
    if (this.inFlight) return false;
    const step = state.committedStep;
    const files = await exportCheckpointFiles(state, this.job.optimizer, this.job.learningRate);
    const upload = (async () => {
      await this.link.sendControl({ type: 'checkpoint', epoch, step, files: describeFiles(files), loss, ...(dataPosition ? { dataPosition } : {}) });
      await sendFiles(this.link, { epoch, step }, files, UPLOAD_TIMEOUT_MS);
      this.log.debug({ step, bytes: files.reduce((n, f) => n + f.data.byteLength, 0) }, 'checkpoint uploaded');
    })();
    this.inFlight = upload
      .catch((error: unknown) => this.log.warn({ err: error, step }, 'checkpoint upload failed; the coordinator keeps the previous one'))
      .finally(() => {
        this.inFlight = undefined;
      });
    return true;
  }

  /** Waits for the upload on the wire, if any. */
  async settle(): Promise<void> {
    await this.inFlight;
  }
}
