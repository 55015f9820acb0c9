import * as tf from '@tensorflow/tfjs';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { Dataset } from '../../shared/data/pipeline/dataset.js';
import type { Sample } from '../../shared/data/pipeline/source.js';
import { imageDatasetSource } from '../../shared/data/sources/image-dataset-source.js';
import { scalePixels } from '../../shared/data/transforms/scale-pixels.js';
import { crossEntropy, type OutputKind } from './loss.js';

export interface Evaluation {
  accuracy: number;
  loss: number;
  samples: number;
}

/** What can be evaluated: an in-memory image set (MNIST), or any pipeline up to `Sample`. */
export type EvaluationData = ImageDataset | Dataset<Sample>;

export interface EvaluateOptions {
  batchSize: number;
  outputKind: OutputKind;
  inputShape: number[];
  /** Classes of the model's output (default: the image set's). */
  numClasses?: number;
  /** After each batch: samples done and in all (a long evaluation can report progress and yield). */
  onBatch?: (done: number, total: number) => void | Promise<void>;
}

/**
 * Accuracy and mean loss over a whole dataset, in batches, in dataset order, read through the data
 * pipeline (unshuffled, the last partial batch kept, one batch prefetched).
 */
export async function evaluate(model: tf.LayersModel, data: EvaluationData, options: EvaluateOptions): Promise<Evaluation> {
  const samples = data instanceof Dataset ? data : Dataset.from(imageDatasetSource(data, 'evaluation')).map(scalePixels.with({}));
  const numClasses = options.numClasses ?? (data instanceof Dataset ? undefined : data.numClasses);
  if (numClasses === undefined) throw new Error('evaluate: numClasses is needed for a pipeline dataset');
  const total = samples.source.size;
  const iterator = samples.batch(options.batchSize, { dropRemainder: false }).prefetch(1).iterate();
  let correct = 0;
  let lossSum = 0;
  let seen = 0;
  try {
    for (let i = 0; i < iterator.batchesPerEpoch; i++) {
      const batch = await iterator.next();
      if (batch.epoch !== 0) break; // samples skipped as bad left fewer batches than counted
      const [hits, loss] = tf.tidy(() => {
        // apply, not predict: predict cuts the batch into slices of 32, and on wasm every slice reads a
        // fresh copy of the whole input (≈ 100 MB of garbage per 1,000 images, collected during training).
        const output = model.apply(tf.tensor(batch.xs, [batch.size, ...options.inputShape]), { training: false }) as tf.Tensor;
        const labels = tf.tensor1d(batch.labels, 'int32');
        const hitCount = tf.sum(tf.cast(tf.equal(tf.argMax(output, -1), labels), 'int32'));
        return [hitCount, crossEntropy(output, labels, numClasses, options.outputKind)];
      });
      correct += (await hits.data())[0]!;
      lossSum += (await loss.data())[0]! * batch.size;
      tf.dispose([hits, loss]);
      seen += batch.size;
      await options.onBatch?.(Math.min(seen, total), total);
    }
  } finally {
    await iterator.close();
  }
  return { accuracy: correct / seen, loss: lossSum / seen, samples: seen };
}
