import { epochOrder, gatherBatch, type Batch } from '../../shared/data/epoch-batches.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { globalBatchOf, sliceOfBatch, type TrainingPlan } from '../../coordinator/job/training-plan.js';

/**
 * This peer's part of the global batch of a step. The epoch order is a pure function of (seed,
 * epoch), identical on every peer; step s uses global batch s−1 of it and rank r takes its
 * contiguous slice. Unlike a fixed shard per rank, this survives membership changes: after a peer
 * is lost, the survivors simply divide the same next global batch among fewer ranks.
 */
export class GlobalBatches {
  private cachedEpoch = -1;
  private order: Uint32Array = new Uint32Array(0);

  constructor(
    private readonly data: ImageDataset,
    private readonly plan: TrainingPlan,
    private readonly seed: number,
  ) {}

  sliceFor(step: number, rank: number, worldSize: number): Batch {
    const { epoch, batch } = globalBatchOf(this.plan, step);
    if (epoch !== this.cachedEpoch) {
      this.order = epochOrder(this.data.count, this.seed, epoch, true);
      this.cachedEpoch = epoch;
    }
    const { start, end } = sliceOfBatch(this.plan.batchSize, rank, worldSize);
    const first = batch * this.plan.batchSize;
    return gatherBatch(this.data, this.order, first + start, first + end);
  }
}
