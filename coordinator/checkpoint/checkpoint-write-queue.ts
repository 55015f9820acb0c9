import type { Logger } from '../../shared/log/logger.js';
import type { TransferFile } from '../protocol/file-transfer.js';
import type { CheckpointStore, StoredCheckpoint } from './checkpoint-store.js';
import type { TrainingStateRecord } from './training-state-record.js';

/**
 * What the data-parallel receiver and the pipeline's stage collector do the same way once an upload
 * is in: write checkpoints with the store one at a time, in the order asked, dropping one that is
 * not newer than what is on disk; and keep track of the uploads still in progress, so `idle()` can
 * wait for all of them.
 */
export class CheckpointWriteQueue {
  private writes: Promise<void> = Promise.resolve();
  private readonly receiving = new Set<Promise<void>>();

  constructor(
    private readonly store: CheckpointStore,
    private readonly log: Logger,
  ) {}

  /** Queues the write of `files` as the checkpoint of `step`; `saved` runs once it is on disk, before the next write starts. */
  write(step: number, files: TransferFile[], record: TrainingStateRecord, saved: (stored: StoredCheckpoint) => void): Promise<void> {
    const write = this.writes.then(async () => {
      const latest = this.store.latest;
      if (latest && latest.step >= step) {
        this.log.debug({ step, latest: latest.step }, 'checkpoint not newer than the one on disk; dropped');
        return;
      }
      saved(await this.store.write(step, files, record));
    });
    // One failed write must not stop the ones queued after it.
    this.writes = write.catch(() => {});
    return write;
  }

  /** Counts `work` (receiving an upload, then writing it) as in progress until it settles. */
  track(work: Promise<void>): void {
    this.receiving.add(work);
    void work.finally(() => this.receiving.delete(work));
  }

  /** Resolves when every upload tracked so far is received and every write queued is done (or has failed). */
  async idle(): Promise<void> {
    while (this.receiving.size > 0) await Promise.allSettled([...this.receiving]);
    await this.writes;
  }
}
