import type { Batch } from '../../shared/data/epoch-batches.js';
import { PipelineError } from './errors.js';

/** One slice of a mini-batch. `lossScale` is its share of the mini-batch (size / mini-batch size). */
export interface MicroBatch {
  index: number;
  xs: Float32Array;
  labels: Int32Array;
  size: number;
  lossScale: number;
}

/**
 * Sizes of `microBatches` slices of a mini-batch, as even as possible (the first ones one larger when
 * it does not divide). GPipe needs every slice non-empty, so a mini-batch smaller than the number of
 * micro-batches is refused.
 */
export function microBatchSizes(batchSize: number, microBatches: number): number[] {
  if (!Number.isInteger(microBatches) || microBatches < 1) {
    throw new PipelineError('usage', `the number of micro-batches must be a positive integer, got ${microBatches}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < microBatches) {
    throw new PipelineError('usage', `a mini-batch of ${batchSize} samples cannot be split into ${microBatches} non-empty micro-batches`);
  }
  const base = Math.floor(batchSize / microBatches);
  const larger = batchSize % microBatches;
  return Array.from({ length: microBatches }, (_, i) => base + (i < larger ? 1 : 0));
}

/**
 * Slices a mini-batch (views, no copies). Each micro-batch's mean loss is scaled by its share, so the
 * scaled losses sum to exactly the mini-batch's mean loss and the accumulated gradients equal the
 * mini-batch's gradients.
 */
export function splitMiniBatch(batch: Batch, microBatches: number): MicroBatch[] {
  const elementsPerSample = batch.xs.length / batch.size;
  if (!Number.isInteger(elementsPerSample) || batch.labels.length !== batch.size) {
    throw new PipelineError('usage', `inconsistent batch: ${batch.xs.length} input values and ${batch.labels.length} labels for ${batch.size} samples`);
  }
  const micro: MicroBatch[] = [];
  let start = 0;
  for (const [index, size] of microBatchSizes(batch.size, microBatches).entries()) {
    micro.push({
      index,
      xs: batch.xs.subarray(start * elementsPerSample, (start + size) * elementsPerSample),
      labels: batch.labels.subarray(start, start + size),
      size,
      lossScale: size / batch.size,
    });
    start += size;
  }
  return micro;
}
