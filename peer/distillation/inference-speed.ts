import * as tf from '@tensorflow/tfjs';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { yieldToEventLoop } from '../session/yield-to-event-loop.js';
import { inOrderBatches } from './distillation-data.js';

/**
 * Milliseconds per sample for inference: `samples` test samples through `predict` in batches of
 * `batchSize`, each batch's output read back (so the time includes the work, not just its
 * scheduling). A warm-up pass first (kernel compilation, first allocations); then the median of
 * three timed passes, which a busy machine disturbs less than a mean.
 */
export async function inferenceMsPerSample(model: tf.LayersModel, test: ImageDataset, inputShape: number[], batchSize: number, samples: number): Promise<number> {
  const count = Math.min(samples, test.count);
  // Gathered before timing, through the data pipeline: only predict is timed.
  const batches: Float32Array[] = [];
  const iterator = inOrderBatches(test, 0, count, batchSize, 'mnist:test');
  try {
    for (let from = 0; from < count; from += batchSize) batches.push((await iterator.next()).xs);
  } finally {
    await iterator.close();
  }
  const pixels = inputShape.reduce((a, b) => a * b, 1);
  const pass = async (): Promise<number> => {
    const began = performance.now();
    for (const xs of batches) {
      const output = tf.tidy(() => model.predict(tf.tensor(xs, [xs.length / pixels, ...inputShape])) as tf.Tensor);
      await output.data();
      output.dispose();
    }
    const ms = performance.now() - began;
    await yieldToEventLoop();
    return ms;
  };
  await pass();
  const times = [await pass(), await pass(), await pass()].sort((a, b) => a - b);
  return times[1]! / count;
}
