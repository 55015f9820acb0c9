import type { ImageDataset } from '../../shared/data/mnist.js';
import type { DataIterator } from '../../shared/data/pipeline/data-iterator.js';
import { Dataset } from '../../shared/data/pipeline/dataset.js';
import { subsetSource } from '../../shared/data/sources/held-out-split.js';
import { imageDatasetSource } from '../../shared/data/sources/image-dataset-source.js';
import { scalePixels } from '../../shared/data/transforms/scale-pixels.js';

/** Samples [start, end) of an in-memory image dataset, in order, as a pipeline source. */
function rangeOf(data: ImageDataset, start: number, end: number, name: string) {
  return subsetSource(imageDatasetSource(data, name), Uint32Array.from({ length: end - start }, (_, i) => start + i), `${name} [${start}, ${end})`);
}

/**
 * The student's batches: the transfer set (the first `samples` training images) shuffled afresh
 * every epoch from the seed, global batches of `batchSize`, of which this rank gets its contiguous
 * slice — the same pipeline and position arithmetic as the cluster's data-parallel training
 * (peer/session/global-batches.ts), so the global batch of a step does not depend on the number
 * of peers. Starts with the batch of step `afterStep + 1`.
 */
export function transferSetBatches(train: ImageDataset, training: { samples: number; batchSize: number; seed: number }, rank: number, worldSize: number, afterStep: number): DataIterator {
  const batchesPerEpoch = Math.floor(training.samples / training.batchSize);
  return Dataset.from(rangeOf(train, 0, training.samples, 'mnist:train transfer set'))
    .shuffle(training.samples, training.seed)
    .map(scalePixels.with({}))
    .batch(training.batchSize)
    .split(rank, worldSize)
    .prefetch(2)
    .iterate({ start: { epoch: Math.floor(afterStep / batchesPerEpoch), index: (afterStep % batchesPerEpoch) * training.batchSize } });
}

/**
 * Samples [start, end) in dataset order, in batches of `batchSize` (the last one partial), each
 * pixel scaled to [0, 1]: what the teacher labels and what inference is timed on. The iterator
 * runs on into further epochs; read ceil((end − start) / batchSize) batches and close it.
 */
export function inOrderBatches(data: ImageDataset, start: number, end: number, batchSize: number, name: string): DataIterator {
  return Dataset.from(rangeOf(data, start, end, name)).map(scalePixels.with({})).batch(batchSize, { dropRemainder: false }).prefetch(1).iterate();
}
