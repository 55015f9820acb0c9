import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from './pipeline/data-error.js';
import { Dataset } from './pipeline/dataset.js';
import type { DataSource, Sample } from './pipeline/source.js';
import type { DatasetSpec } from './dataset-spec.js';
import { loadMnist, type ImageDataset } from './mnist.js';
import { csvSource } from './sources/csv-source.js';
import { holdOut } from './sources/held-out-split.js';
import { imageDatasetSource } from './sources/image-dataset-source.js';
import { imageFolderSource } from './sources/image-folder-source.js';
import { jsonLinesSource } from './sources/json-lines-source.js';
import type { TabularSource } from './sources/tabular-mapping.js';
import { augmentImage } from './transforms/augment-image.js';
import { decodeImage } from './transforms/decode-image.js';
import { scalePixels } from './transforms/scale-pixels.js';

/**
 * A job's data, opened: training and test samples as pipelines up to `Sample` (decoded, scaled,
 * not yet shuffled or batched), and the shape the model must take. Trainers add shuffle, batch,
 * split and prefetch themselves.
 */
export interface JobData {
  /** Names the data in logs. */
  name: string;
  train: Dataset<Sample>;
  test: Dataset<Sample>;
  trainCount: number;
  testCount: number;
  /** Shape of one sample, e.g. [28, 28, 1] or [4]. */
  inputShape: number[];
  numClasses: number;
  /** Batches kept ready ahead of the trainer. */
  prefetch: number;
  /**
   * Identifies the data's content (file bytes; for image folders, the files' names and sizes), so
   * peers whose files differ behind the same path can be told apart before they train together.
   */
  fingerprint: string;
  /** MNIST held in memory, for what still reads it directly (distillation rounds). */
  images?: { train: ImageDataset; test: ImageDataset };
}

/** Reads and checks the job's dataset; errors name the field (`dataset.train`…) and the file. */
export async function openJobData(spec: DatasetSpec, options: { mnist?: { train: ImageDataset; test: ImageDataset } } = {}): Promise<JobData> {
  if (spec === 'mnist' || spec.kind === 'mnist') {
    const images = options.mnist ?? { train: await loadMnist('train'), test: await loadMnist('test') };
    const parallel = spec === 'mnist' ? 0 : (spec.parallel ?? 0);
    const pipeline = (data: ImageDataset, name: string) => Dataset.from(imageDatasetSource(data, name)).map(scalePixels.with({}), { parallel });
    const { train, test } = images;
    return {
      name: 'mnist',
      train: pipeline(train, 'mnist:train'),
      test: pipeline(test, 'mnist:test'),
      trainCount: train.count,
      testCount: test.count,
      inputShape: [train.height, train.width, train.channels],
      numClasses: train.numClasses,
      prefetch: spec === 'mnist' ? 2 : spec.prefetch,
      fingerprint: 'mnist',
      images,
    };
  }
  if (spec.kind === 'image-folder') return openImageFolder(spec);
  return openTabular(spec);
}

type TabularSpec = Extract<DatasetSpec, { kind: 'csv' | 'jsonl' }>;

async function openTabular(spec: TabularSpec): Promise<JobData> {
  const open = (file: string, field: string, classes?: readonly string[]) =>
    located(field, () => {
      const mapping = { label: spec.label, onBadRow: spec.onBadRow, ...(classes ? { classes: [...classes] } : spec.classes ? { classes: spec.classes } : {}) };
      return spec.kind === 'csv'
        ? csvSource(file, { ...mapping, header: spec.header, delimiter: spec.delimiter, ...(spec.features ? { features: spec.features } : {}) })
        : jsonLinesSource(file, { ...mapping, features: spec.features });
    });
  const whole = await open(spec.train, 'dataset.train');
  let train: DataSource<Sample> = whole;
  let test: DataSource<Sample>;
  let numClasses = whole.numClasses;
  if (spec.test) {
    // Label names map to the training file's classes, so a class index means the same in both.
    const testSource: TabularSource = await open(spec.test, 'dataset.test', whole.classes);
    if (testSource.featureNames.length !== whole.featureNames.length) {
      throw new DataError(`dataset.test: ${spec.test} has ${testSource.featureNames.length} features per row, ${spec.train} has ${whole.featureNames.length}. Use the same columns in both files.`);
    }
    numClasses = Math.max(numClasses, testSource.numClasses);
    test = testSource;
  } else {
    ({ train, test } = splitOrFail(whole, spec.testFraction, spec.train));
  }
  // Rows are parsed when the file is opened: nothing is left to decode per sample, so no threads.
  return {
    name: `${spec.kind}:${spec.train}`,
    train: Dataset.from(train),
    test: Dataset.from(test),
    trainCount: train.size,
    testCount: test.size,
    inputShape: [whole.featureNames.length],
    numClasses,
    prefetch: spec.prefetch,
    fingerprint: await fingerprintFiles([spec.train, spec.test]),
  };
}

type ImageFolderSpec = Extract<DatasetSpec, { kind: 'image-folder' }>;

async function openImageFolder(spec: ImageFolderSpec): Promise<JobData> {
  const whole = await located('dataset.train', () => imageFolderSource(spec.train));
  let train: DataSource<unknown> = whole;
  let test: DataSource<unknown>;
  if (spec.test) {
    const testSource = await located('dataset.test', () => imageFolderSource(spec.test!));
    if (testSource.classes.join('\n') !== whole.classes.join('\n')) {
      throw new DataError(`dataset.test: the class folders of ${spec.test} (${testSource.classes.join(', ')}) differ from those of ${spec.train} (${whole.classes.join(', ')}). Use the same class sub-folders in both.`);
    }
    test = testSource;
  } else {
    ({ train, test } = splitOrFail(whole, spec.testFraction, spec.train));
  }
  // Decoding is the expensive part: two threads by default, so it runs ahead of the trainer.
  const parallel = spec.parallel ?? 2;
  const [height, width] = spec.imageSize;
  const pipeline = (source: DataSource<unknown>) =>
    Dataset.from(source as DataSource<{ file: string; label: number }>)
      .map(decodeImage.with({ channels: spec.channels }), { parallel, onError: spec.onBadFile })
      .map(augmentImage.with({ resize: [height, width] }), { parallel })
      .map(scalePixels.with({}), { parallel });
  return {
    name: `image-folder:${spec.train}`,
    train: pipeline(train),
    test: pipeline(test),
    trainCount: train.size,
    testCount: test.size,
    inputShape: [height, width, spec.channels],
    numClasses: whole.classes.length,
    prefetch: spec.prefetch,
    fingerprint: await fingerprintFolders([whole, ...(spec.test ? [test] : [])] as { size: number; read(i: number): unknown }[]),
  };
}

async function fingerprintFiles(files: (string | undefined)[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) if (file !== undefined) hash.update(await readFile(file));
  return hash.digest('hex').slice(0, 16);
}

/** Names (relative to nothing: the class folder and file) and sizes, not the bytes: folders can be large. */
async function fingerprintFolders(sources: { size: number; read(i: number): unknown }[]): Promise<string> {
  const hash = createHash('sha256');
  for (const source of sources) {
    for (let i = 0; i < source.size; i++) {
      const { file, label } = source.read(i) as { file: string; label: number };
      hash.update(`${label}/${path.basename(file)}:${(await stat(file)).size}\n`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

function splitOrFail<T>(source: DataSource<T>, fraction: number, file: string): { train: DataSource<T>; test: DataSource<T> } {
  if (source.size < 2) throw new DataError(`dataset.train: ${file} has ${source.size} usable sample(s); holding out a test set needs at least 2. Add data, or name a test file in dataset.test.`);
  return holdOut(source, fraction);
}

/** Prefixes a data error with the job field it came from, so the user knows which setting to fix. */
async function located<T>(field: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (error) {
    if (error instanceof DataError) throw new DataError(`${field}: ${error.message}`);
    throw error;
  }
}
