import type { DataIterator } from '../../shared/data/pipeline/data-iterator.js';
import type { Dataset } from '../../shared/data/pipeline/dataset.js';
import type { PipelineBatch } from '../../shared/data/pipeline/batch-assembler.js';
import { DataError } from '../../shared/data/pipeline/data-error.js';
import type { PipelinePosition } from '../../shared/data/pipeline/position.js';
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

  /**
   * The slices of steps `afterStep + 1`, `afterStep + 2`… for `rank` of `worldSize`. Close it when
   * the epoch ends. `saved`: the position a checkpoint saved with step `afterStep`; the iterator
   * resumes there, and it is refused if it is not where that step ends or belongs to a pipeline
   * that orders samples differently.
   */
  open(rank: number, worldSize: number, afterStep: number, log?: Logger, saved?: PipelinePosition): SliceStream {
    const expected = dataPositionAfter(this.plan, afterStep);
    if (saved && (saved.epoch !== expected.epoch || saved.index !== expected.index)) {
      throw new Error(`the checkpoint of step ${afterStep} saved the data position ${JSON.stringify({ epoch: saved.epoch, index: saved.index })}, but step ${afterStep} ends at ${JSON.stringify(expected)} with ${this.plan.batchesPerEpoch} global batches of ${this.plan.batchSize} per epoch: resume with the batch size and dataset it was written with`);
    }
    const iterator = this.data
      .shuffle(this.plan.trainSamples, this.seed)
      .batch(this.plan.batchSize)
      .split(rank, worldSize)
      .prefetch(this.prefetch)
      .iterate({ start: expected, ...(log ? { log } : {}) });
    if (saved?.pipeline !== undefined && sameOrder(saved.pipeline) !== sameOrder(iterator.pipeline)) {
      void iterator.close();
      throw new DataError(
        `cannot resume: the checkpoint's data position belongs to the pipeline\n  ${saved.pipeline}\nbut this peer's is\n  ${iterator.pipeline}\n` +
          'so the batches would differ. Resume with the same dataset, seed and batch size, or train into a new run folder.',
      );
    }
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

  /** The position with the pipeline it belongs to: what a checkpoint saves. */
  get savedPosition(): PipelinePosition & { pipeline: string } {
    return { ...this.position, pipeline: this.pipeline };
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

/**
 * What decides the order of a pipeline description, without where the source lives: peers may keep
 * the same dataset at different paths, so `image-folder:/a/b (N samples) | …` compares from `(N samples)` on.
 */
function sameOrder(pipeline: string): string {
  return pipeline.replace(/^[^|]*?(\(\d+ samples\))/, '$1');
}
