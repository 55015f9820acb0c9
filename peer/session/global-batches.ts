import type { DataIterator } from '../../shared/data/pipeline/data-iterator.js';
import type { Dataset } from '../../shared/data/pipeline/dataset.js';
import type { PipelineBatch } from '../../shared/data/pipeline/batch-assembler.js';
import type { Sample } from '../../shared/data/pipeline/source.js';
import type { Logger } from '../../shared/log/logger.js';
import { dataPositionAfter, type TrainingPlan } from '../../coordinator/job/training-plan.js';

/**
 * This peer's part of each global batch, read through the data pipeline. The epoch order is a
 * pure function of (seed, epoch), identical on every peer; step s uses global batch s−1 of it and
 * rank r takes (and decodes) only its contiguous slice (`BatchedDataset.split`). Unlike a fixed
 * shard per rank, this survives membership changes: after a peer is lost, the survivors open the
 * stream again with the new rank and world size and divide the same next global batch among fewer
 * ranks. Prefetching (and decoding threads, for image folders) run ahead of the trainer.
 */
export class GlobalBatches {
  constructor(
    private readonly data: Dataset<Sample>,
    private readonly plan: TrainingPlan,
    private readonly seed: number,
    private readonly prefetch: number,
  ) {}

  /** The slices of steps `afterStep + 1`, `afterStep + 2`… for `rank` of `worldSize`. Close it when the epoch ends. */
  open(rank: number, worldSize: number, afterStep: number, log?: Logger): SliceStream {
    const iterator = this.data
      .shuffle(this.plan.trainSamples, this.seed)
      .batch(this.plan.batchSize)
      .split(rank, worldSize)
      .prefetch(this.prefetch)
      .iterate({ start: dataPositionAfter(this.plan, afterStep), ...(log ? { log } : {}) });
    if (iterator.batchesPerEpoch !== this.plan.batchesPerEpoch) {
      void iterator.close();
      throw new Error(`the data pipeline has ${iterator.batchesPerEpoch} global batches per epoch, the training plan ${this.plan.batchesPerEpoch}: every peer must hold the same dataset (${this.plan.trainSamples} training samples)`);
    }
    return new SliceStream(iterator, this.plan, afterStep);
  }
}

/** The slices of consecutive steps, each checked to be the global batch its step must train on. */
export class SliceStream {
  constructor(
    private readonly iterator: DataIterator,
    private readonly plan: TrainingPlan,
    private step: number,
  ) {}

  /** Description of the pipeline (source, shuffle, batch), as saved positions name it. */
  get pipeline(): string {
    return this.iterator.pipeline;
  }

  /** Where the iterator stands: after the last slice handed out, i.e. what a checkpoint at that step resumes from. */
  get position(): { epoch: number; index: number } {
    return this.normalised(this.iterator.position);
  }

  get stall(): DataIterator['stall'] {
    return this.iterator.stall;
  }

  async next(): Promise<PipelineBatch> {
    const batch = await this.iterator.next();
    this.step++;
    // A guard against the stream and the step count drifting apart (they are derived separately).
    const expected = dataPositionAfter(this.plan, this.step);
    const at = this.normalised(batch.position);
    if (at.epoch !== expected.epoch || at.index !== expected.index) {
      throw new Error(`data stream out of step: after step ${this.step} the iterator stands at ${JSON.stringify(at)}, expected ${JSON.stringify(expected)}`);
    }
    return batch;
  }

  /** The end of an epoch's last full global batch is the start of the next epoch (the partial rest is dropped). */
  private normalised({ epoch, index }: { epoch: number; index: number }): { epoch: number; index: number } {
    return index >= this.plan.batchesPerEpoch * this.plan.batchSize ? { epoch: epoch + 1, index: 0 } : { epoch, index };
  }

  close(): Promise<void> {
    return this.iterator.close();
  }
}
