import type { ImageDataset } from '../../shared/data/mnist.js';
import type { DataIterator } from '../../shared/data/pipeline/data-iterator.js';
import { Dataset } from '../../shared/data/pipeline/dataset.js';
import { subsetSource } from '../../shared/data/sources/held-out-split.js';
import { imageDatasetSource } from '../../shared/data/sources/image-dataset-source.js';
import { scalePixels } from '../../shared/data/transforms/scale-pixels.js';
import { trainingPlan } from '../../coordinator/job/training-plan.js';
import { GlobalBatches, type SliceStream } from '../session/global-batches.js';

/** Samples [start, end) of an in-memory image dataset, in order, as a pipeline source. */
function rangeOf(data: ImageDataset, start: number, end: number, name: string) {
  return subsetSource(imageDatasetSource(data, name), Uint32Array.from({ length: end - start }, (_, i) => start + i), `${name} [${start}, ${end})`);
}

/**
 * The student's batches: the transfer set (the first `samples` training images) shuffled afresh
 * every epoch from the seed, global batches of `batchSize`, of which this rank gets its contiguous
 * slice — read through the cluster's data-parallel `GlobalBatches` (peer/session/global-batches.ts),
 * so the global batch of a step does not depend on the number of peers. Starts with the batch of
 * step `afterStep + 1`.
 */
export function transferSetBatches(train: ImageDataset, training: { samples: number; batchSize: number; seed: number }, rank: number, worldSize: number, afterStep: number): SliceStream {
  const transferSet = Dataset.from(rangeOf(train, 0, training.samples, 'mnist:train transfer set')).map(scalePixels.with({}));
  // GlobalBatches reads the plan's batch size and batches per epoch; its step count is not used.
  const plan = trainingPlan({ batchSize: training.batchSize, epochs: 1, maxSteps: 0 }, training.samples);
  return new GlobalBatches(transferSet, plan, training.seed, 2).open(rank, worldSize, afterStep);
}

/**
 * Samples [start, end) in dataset order, in batches of `batchSize` (the last one partial), each
 * pixel scaled to [0, 1]: what the teacher labels and what inference is timed on. The iterator
 * runs on into further epochs; read ceil((end − start) / batchSize) batches and close it.
 */
export function inOrderBatches(data: ImageDataset, start: number, end: number, batchSize: number, name: string): DataIterator {
  return Dataset.from(rangeOf(data, start, end, name)).map(scalePixels.with({})).batch(batchSize, { dropRemainder: false }).prefetch(1).iterate();
}
