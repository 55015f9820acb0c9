import type { BatchPosition } from '../batch.js';
import { DataError } from './data-error.js';

/**
 * Where an iterator stands, as plain JSON for a checkpoint: the next batch starts at sample
 * `index` of epoch `epoch`'s order. No shuffle buffer is stored: the order of an epoch is a pure
 * function of the seeds, so restoring replays the (index-only) shuffle of that epoch.
 * `pipeline` describes everything that decides the order; restoring into a pipeline that
 * would order samples differently is refused instead of silently training on other batches.
 */
export interface PipelinePosition extends BatchPosition {
  pipeline?: string;
}

export function checkStartPosition(start: PipelinePosition, pipeline: string): void {
  if (!Number.isInteger(start.epoch) || start.epoch < 0 || !Number.isInteger(start.index) || start.index < 0) {
    throw new DataError(`cannot resume from position ${JSON.stringify(start)}: epoch and index must be whole numbers ≥ 0.`);
  }
  if (start.pipeline !== undefined && start.pipeline !== pipeline) {
    throw new DataError(
      `cannot resume: the saved position belongs to the pipeline\n  ${start.pipeline}\nbut this one is\n  ${pipeline}\n` +
        'so the batches would differ. Resume with the same source, shard, shuffle and batch settings, or start from epoch 0.',
    );
  }
}
