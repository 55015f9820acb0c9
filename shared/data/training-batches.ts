import type { ImageDataset } from './mnist.js';
import { Dataset, type BatchedDataset } from './pipeline/dataset.js';
import { imageDatasetSource } from './sources/image-dataset-source.js';
import { scalePixels } from './transforms/scale-pixels.js';

export interface TrainingBatchesOptions {
  batchSize: number;
  seed: number;
  /** This peer's share for data-parallel training; every peer passes the same seed. */
  shard?: { rank: number; world: number };
  /**
   * Data-parallel by global batch instead: `batchSize` is the global batch and this peer gets
   * slice `rank` of each (see BatchedDataset.split); positions then survive a change of `world`.
   */
  split?: { rank: number; world: number };
  /** Batches kept ready ahead of the trainer (default 2). */
  prefetch?: number;
  name?: string;
}

/**
 * The standard training pipeline for an in-memory image dataset such as MNIST: a fresh full
 * shuffle every epoch (same on every peer, from the seed), then this peer's shard of it — so each
 * epoch deals every peer a different, disjoint part, like PyTorch's DistributedSampler — with
 * equal shard sizes so all peers run the same number of steps.
 */
export function trainingBatches(data: ImageDataset, options: TrainingBatchesOptions): BatchedDataset {
  let dataset = Dataset.from(imageDatasetSource(data, options.name ?? 'images')).shuffle(data.count, options.seed);
  if (options.shard) dataset = dataset.shard(options.shard.rank, options.shard.world, { equalSize: true });
  const batched = dataset.map(scalePixels.with({})).batch(options.batchSize);
  return (options.split ? batched.split(options.split.rank, options.split.world) : batched).prefetch(options.prefetch ?? 2);
}
