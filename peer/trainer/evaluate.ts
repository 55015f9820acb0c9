import * as tf from '@tensorflow/tfjs';
import { EpochBatches } from '../../shared/data/epoch-batches.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { crossEntropy, type OutputKind } from './loss.js';

export interface Evaluation {
  accuracy: number;
  loss: number;
  samples: number;
}

/** Accuracy and mean loss over a whole dataset, in batches, in dataset order. */
export async function evaluate(
  model: tf.LayersModel,
  data: ImageDataset,
  options: { batchSize: number; outputKind: OutputKind; inputShape: number[] },
): Promise<Evaluation> {
  const batches = new EpochBatches(data, { batchSize: options.batchSize, seed: 0, shuffle: false, keepPartial: true });
  let correct = 0;
  let lossSum = 0;
  for (let i = 0; i < batches.batchesPerEpoch; i++) {
    const batch = batches.next();
    const [hits, loss] = tf.tidy(() => {
      const output = model.predict(tf.tensor(batch.xs, [batch.size, ...options.inputShape])) as tf.Tensor;
      const labels = tf.tensor1d(batch.labels, 'int32');
      const hitCount = tf.sum(tf.cast(tf.equal(tf.argMax(output, -1), labels), 'int32'));
      return [hitCount, crossEntropy(output, labels, data.numClasses, options.outputKind)];
    });
    correct += (await hits.data())[0]!;
    lossSum += (await loss.data())[0]! * batch.size;
    tf.dispose([hits, loss]);
  }
  return { accuracy: correct / data.count, loss: lossSum / data.count, samples: data.count };
}
