import { loadMnist, type ImageDataset, type MnistSplit } from '../mnist.js';
import type { DataSource, LabelledImage } from '../pipeline/source.js';

/** An in-memory image dataset (e.g. MNIST) as a source of `LabelledImage`s. */
export function imageDatasetSource(data: ImageDataset, name: string): DataSource<LabelledImage> {
  const pixels = data.height * data.width * data.channels;
  return {
    name,
    size: data.count,
    skipped: [],
    read(index) {
      // slice, not subarray: the element must own its bytes (a view would drag the whole 47 MB buffer to a worker).
      return { data: data.images.slice(index * pixels, (index + 1) * pixels), height: data.height, width: data.width, channels: data.channels, label: data.labels[index]! };
    },
  };
}

/** MNIST from the bundled IDX files; pass `data` to reuse a split already in memory. */
export async function mnistSource(split: MnistSplit, data?: ImageDataset): Promise<DataSource<LabelledImage>> {
  return imageDatasetSource(data ?? (await loadMnist(split)), `mnist:${split}`);
}
