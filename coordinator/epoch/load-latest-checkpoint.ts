import type { Logger } from '../../shared/log/logger.js';
import type { CheckpointStore, LoadedCheckpoint } from '../checkpoint/checkpoint-store.js';

/** The newest checkpoint that still verifies (falls back, with a warning, if it was damaged). */
export async function loadLatestCheckpoint(store: CheckpointStore, log: Logger): Promise<LoadedCheckpoint | undefined> {
  const latest = store.latest;
  if (latest) {
    try {
      return await store.verify(latest);
    } catch (error) {
      log.warn({ checkpoint: latest.dir }, `checkpoint ${latest.dir} is unusable — ${(error as Error).message}; falling back to the previous checkpoint`);
    }
  }
  return store.loadNewestGood();
}
