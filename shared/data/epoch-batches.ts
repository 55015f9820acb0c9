/**
 * A shim, not a second batcher: trainers (data-parallel, pipeline sessions, distillation) read
 * through the data pipeline (./pipeline, `Dataset`), and so does the GPipe stage launcher. What is
 * left here serves the planner's batch-assembly probe, benchmarks and tests that gather in-memory
 * batches directly.
 */
import { Prng } from '../random/prng.js';
import type { Batch, BatchPosition } from './batch.js';
import type { ImageDataset } from './mnist.js';

export type { Batch, BatchPosition } from './batch.js';

export interface EpochBatchesOptions {
  batchSize: number;
  seed: number;
  shuffle?: boolean;
  start?: BatchPosition;
}

/**
 * The order of an epoch depends only on (seed, epoch), so any position can be resumed without
 * replaying earlier epochs.
 */
export function epochOrder(count: number, seed: number, epoch: number, shuffle: boolean): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  if (shuffle) new Prng((seed * 7919 + epoch * 104729) >>> 0).shuffle(order);
  return order;
}

/** Copies samples `order[from..to)` into a batch, scaling bytes to [0, 1]. */
export function gatherBatch(data: ImageDataset, order: ArrayLike<number>, from: number, to: number): Batch {
  const size = to - from;
  const pixels = data.height * data.width * data.channels;
  const xs = new Float32Array(size * pixels);
  const labels = new Int32Array(size);
  for (let b = 0; b < size; b++) {
    const sample = order[from + b]!;
    const src = data.images.subarray(sample * pixels, (sample + 1) * pixels);
    const dst = b * pixels;
    for (let p = 0; p < pixels; p++) xs[dst + p] = src[p]! / 255;
    labels[b] = data.labels[sample]!;
  }
  return { xs, labels, size };
}

/** Batches of one epoch after another, from an in-memory dataset. */
export class EpochBatches {
  private position: BatchPosition;
  private order: Uint32Array;

  constructor(
    private readonly data: ImageDataset,
    private readonly options: EpochBatchesOptions,
  ) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new Error(`batch size must be a positive integer, got ${options.batchSize}`);
    this.position = { ...(options.start ?? { epoch: 0, index: 0 }) };
    this.order = this.orderFor(this.position.epoch);
  }

  /** Full batches per epoch: the partial last batch is dropped (evaluation reads through the pipeline). */
  get batchesPerEpoch(): number {
    return Math.floor(this.data.count / this.options.batchSize);
  }

  get current(): BatchPosition {
    return { ...this.position };
  }

  /** The next batch, rolling over into the next epoch when this one is exhausted. */
  next(): Batch {
    let remaining = this.data.count - this.position.index;
    if (remaining < this.options.batchSize) {
      this.position = { epoch: this.position.epoch + 1, index: 0 };
      this.order = this.orderFor(this.position.epoch);
      remaining = this.data.count;
    }
    const to = this.position.index + Math.min(this.options.batchSize, remaining);
    const batch = gatherBatch(this.data, this.order, this.position.index, to);
    this.position.index = to;
    return batch;
  }

  private orderFor(epoch: number): Uint32Array {
    return epochOrder(this.data.count, this.options.seed, epoch, this.options.shuffle ?? true);
  }
}
