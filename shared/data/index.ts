/**
 * The input pipeline, one import for trainers:
 *
 *   import { Dataset, mnistSource, scalePixels } from '../../shared/data/index.js';
 *   const it = Dataset.from(await mnistSource('train')).shard(rank, world).shuffle(60_000, seed)
 *     .map(scalePixels.with({})).batch(128).prefetch(2).iterate({ start: saved?.position });
 *   const batch = await it.next();   // { xs, labels, size, epoch, position }
 *   …; await it.close();
 *
 * See docs/readme-parts/data.md.
 */
export { Dataset, BatchedDataset, type MapOptions, type ShardOptions, type BatchOptions } from './pipeline/dataset.js';
export { DataIterator, type IterateOptions } from './pipeline/data-iterator.js';
export type { PipelineBatch, SkipStats } from './pipeline/batch-assembler.js';
export type { PipelinePosition } from './pipeline/position.js';
export { DataError, type OnBadRecord, type SkippedRecord } from './pipeline/data-error.js';
export type { DataSource, Sample, LabelledImage } from './pipeline/source.js';
export { defineTransform, type Transform, type TransformStep, type TransformContext, type JsonValue } from './pipeline/transform.js';
export { epochIndexOrder, epochLength } from './pipeline/index-order.js';
export { mnistSource, imageDatasetSource } from './sources/image-dataset-source.js';
export { imageFolderSource, type ImageFileRef, type ImageFolderSource } from './sources/image-folder-source.js';
export { csvSource, type CsvOptions } from './sources/csv-source.js';
export { jsonLinesSource } from './sources/json-lines-source.js';
export type { TabularMapping, TabularSource } from './sources/tabular-mapping.js';
export { decodeImage, type DecodeImageOptions } from './transforms/decode-image.js';
export { augmentImage, type AugmentImageOptions } from './transforms/augment-image.js';
export { scalePixels } from './transforms/scale-pixels.js';
export { StallMeter, classifyStall, type StallReport, type InputBoundVerdict, type StallMeterOptions } from './stall-meter.js';
export { trainingBatches, type TrainingBatchesOptions } from './training-batches.js';
export { datasetSchema, type DatasetSpec } from './dataset-spec.js';
export { openJobData, type JobData } from './open-dataset.js';
export type { Batch, BatchPosition } from './batch.js';
// toTfDataset (./to-tf-dataset.js) is not re-exported: it loads @tensorflow/tfjs, which worker
// threads importing transforms through this file should not pay for.
