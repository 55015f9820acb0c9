import * as tf from '@tensorflow/tfjs';
import type { BatchedDataset } from './pipeline/dataset.js';

export interface TfDatasetOptions {
  /** Shape of one sample, e.g. [28, 28, 1]. */
  inputShape: number[];
  numClasses: number;
}

/**
 * The pipeline as a `tf.data.Dataset` of `{ xs, ys }` batches (one-hot labels), for
 * `model.fitDataset`. tfjs-data drives the epochs; each pass starts the next epoch of our
 * pipeline (its own shuffle), and tensors are created only as tfjs-data pulls them.
 */
export function toTfDataset(batched: BatchedDataset, options: TfDatasetOptions): tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }> {
  let epoch = 0;
  async function* oneEpoch() {
    const iterator = batched.iterate({ start: { epoch: epoch++, index: 0 } });
    try {
      for (let i = 0; i < iterator.batchesPerEpoch; i++) {
        const batch = await iterator.next();
        yield tf.tidy(() => ({
          xs: tf.tensor(batch.xs, [batch.size, ...options.inputShape]),
          ys: tf.oneHot(tf.tensor1d(batch.labels, 'int32'), options.numClasses),
        }));
      }
    } finally {
      await iterator.close();
    }
  }
  // tfjs-data accepts async iterators at run time; its typing only names the sync kind.
  return tf.data.generator(oneEpoch as unknown as () => Iterator<{ xs: tf.Tensor; ys: tf.Tensor }>);
}
