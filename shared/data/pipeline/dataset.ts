import type { OnBadRecord } from './data-error.js';
import { DataIterator, type IterateOptions } from './data-iterator.js';
import { validateIndexStage, type IndexStage } from './index-order.js';
import type { BatchedPlan, ElementStage, MapStage, Plan } from './plan.js';
import type { DataSource, Sample } from './source.js';
import type { TransformStep } from './transform.js';

export interface MapOptions {
  /** Worker threads to run this map in; 0 (default) runs it in the trainer's thread. */
  parallel?: number;
  /** Seed of the per-sample random generator the transform gets (augmentations). Default 0. */
  seed?: number;
  /** A sample the transform fails on: stop with its error (default), or skip it and count. */
  onError?: OnBadRecord;
}

export interface ShardOptions {
  /** Drop the (at most one) extra sample of the larger shards so every rank has as many steps. */
  equalSize?: boolean;
}

export interface BatchOptions {
  /** Drop the last, smaller batch of an epoch (default true: training). */
  dropRemainder?: boolean;
  /** Samples per unit of work sent to a thread (default min(batch size, 32)). */
  chunkSize?: number;
}

/**
 * A composable, deterministic input pipeline, in the spirit of tf.data:
 *
 *   Dataset.from(await imageFolderSource(dir))
 *     .shard(rank, world)            // this peer's disjoint part
 *     .shuffle(10_000, seed)         // reshuffled every epoch, from (seed, epoch)
 *     .map(decodeImage.with({ channels: 1 }), { parallel: 2 })
 *     .map(augmentImage.with({ crop: [28, 28], flip: true }), { parallel: 2, seed })
 *     .map(scalePixels.with({}), { parallel: 2 })
 *     .batch(64)
 *     .prefetch(4)
 *     .iterate({ start: checkpoint?.position })
 *
 * shard and shuffle reorder sample indices (cheap, and what makes positions resumable); map
 * and cache work on each sample. Batches are the same for a seed whatever `parallel` is.
 * Each call returns a new Dataset; nothing runs until `iterate()`.
 */
export class Dataset<T> {
  private constructor(private readonly plan: Plan) {}

  static from<T>(source: DataSource<T>): Dataset<T> {
    return new Dataset<T>({ source: source as DataSource<unknown>, indexStages: [], elementStages: [] });
  }

  get source(): DataSource<unknown> {
    return this.plan.source;
  }

  /**
   * Keeps this peer's share: rank r of `world` takes every world-th sample starting at r, so the
   * shards are disjoint and cover the data. Every peer must build the same pipeline (same
   * source, same seeds) before and after, changing only `rank`. Shard before shuffle for a
   * fixed split; shuffle (same seed on every peer) before shard to deal a fresh split each epoch.
   */
  shard(rank: number, world: number, options: ShardOptions = {}): Dataset<T> {
    return this.withIndexStage({ kind: 'shard', rank, world, equalSize: options.equalSize ?? false });
  }

  /** tf.data-style buffered shuffle; a buffer ≥ the dataset size is a full uniform shuffle. */
  shuffle(bufferSize: number, seed: number): Dataset<T> {
    return this.withIndexStage({ kind: 'shuffle', bufferSize, seed });
  }

  map<U>(step: TransformStep<T, U>, options: MapOptions = {}): Dataset<U> {
    const parallel = options.parallel ?? 0;
    if (!Number.isInteger(parallel) || parallel < 0) throw new Error(`map(${step.transform.exportName}): parallel must be a whole number ≥ 0, got ${parallel}`);
    const stage: ElementStage = { kind: 'map', transform: step.transform as unknown as MapStage['transform'], options: step.options, parallel, seed: options.seed ?? 0, onError: options.onError ?? 'error' };
    return new Dataset<U>({ ...this.plan, elementStages: [...this.plan.elementStages, stage] });
  }

  /**
   * Keeps each sample's element as computed so far (in memory, or in `file`, which later runs
   * reuse), so the maps before it run once per sample rather than once per epoch. Put it after
   * decoding and before random augmentation: maps before a cache get the same randomness every epoch.
   */
  cache(options: { file?: string } = {}): Dataset<T> {
    const stage: ElementStage = options.file ? { kind: 'cache', file: options.file } : { kind: 'cache' };
    return new Dataset<T>({ ...this.plan, elementStages: [...this.plan.elementStages, stage] });
  }

  batch(this: Dataset<Sample>, size: number, options: BatchOptions = {}): BatchedDataset {
    if (!Number.isInteger(size) || size < 1) throw new Error(`batch(size): size must be a positive whole number, got ${size}`);
    const chunkSize = options.chunkSize ?? Math.min(size, 32);
    if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new Error(`batch(): chunkSize must be a positive whole number, got ${chunkSize}`);
    return new BatchedDataset({ ...this.plan, batch: { size, dropRemainder: options.dropRemainder ?? true, chunkSize }, prefetch: 0 });
  }

  private withIndexStage(stage: IndexStage): Dataset<T> {
    validateIndexStage(stage);
    return new Dataset<T>({ ...this.plan, indexStages: [...this.plan.indexStages, stage] });
  }
}

export class BatchedDataset {
  constructor(private readonly plan: BatchedPlan) {}

  /** Keep up to `batches` batches ready ahead of the trainer. */
  prefetch(batches: number): BatchedDataset {
    if (!Number.isInteger(batches) || batches < 0) throw new Error(`prefetch(batches): batches must be a whole number ≥ 0, got ${batches}`);
    return new BatchedDataset({ ...this.plan, prefetch: batches });
  }

  /**
   * Data-parallel training by global batch: every peer runs the same pipeline with the same
   * seeds, and the `size` samples of each batch (now a *global* batch) are divided into `world`
   * contiguous slices, of which this peer takes and decodes only slice `rank`. All peers take the
   * same number of steps, step k of all of them together is exactly global batch k, and positions
   * are global: a checkpoint resumes under a different `world` (after a peer is lost, the survivors
   * divide the same next global batch among fewer ranks). The partial last global batch of an
   * epoch is dropped.
   */
  split(rank: number, world: number): BatchedDataset {
    if (!Number.isInteger(world) || world < 1) throw new Error(`split(rank, world): world must be a positive whole number, got ${world}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new Error(`split(rank, world): rank must be a whole number in 0..${world - 1}, got ${rank}`);
    if (this.plan.batch.size < world) throw new Error(`split(${rank}, ${world}): a global batch of ${this.plan.batch.size} cannot give each of ${world} peers a sample; use a batch of at least ${world}`);
    if (!this.plan.batch.dropRemainder) throw new Error('split() drops the partial last global batch of an epoch; remove batch(n, { dropRemainder: false })');
    return new BatchedDataset({ ...this.plan, split: { rank, world } });
  }

  /** Starts the pipeline (threads, prefetching). Close the iterator when done. */
  iterate(options: IterateOptions = {}): DataIterator {
    return new DataIterator(this.plan, options);
  }
}
