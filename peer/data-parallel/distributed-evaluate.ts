import type * as tf from '@tensorflow/tfjs';
import type { ImageDataset } from '../../shared/data/mnist.js';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { evaluate, type Evaluation } from '../trainer/evaluate.js';
import type { OutputKind } from '../trainer/loss.js';

/** A contiguous slice of a dataset, sharing its memory. */
function sliceOf(data: ImageDataset, start: number, end: number): ImageDataset {
  const pixels = data.height * data.width * data.channels;
  return { ...data, images: data.images.subarray(start * pixels, end * pixels), labels: data.labels.subarray(start, end), count: end - start };
}

/**
 * Test accuracy with the work split: each rank evaluates its slice of the test set and the ring sums
 * the counts, so every rank gets the accuracy of the whole set in 1/N of the time.
 */
export async function evaluateDistributed(
  model: tf.LayersModel,
  data: ImageDataset,
  ring: RingCollective,
  options: { batchSize: number; outputKind: OutputKind; inputShape: number[] },
): Promise<Evaluation> {
  const own = ring.segmentOf(data.count);
  const local = own.end > own.start ? await evaluate(model, sliceOf(data, own.start, own.end), options) : { accuracy: 0, loss: 0, samples: 0 };
  // Counts up to 2^24 are exact in float32.
  const totals = Float32Array.of(Math.round(local.accuracy * local.samples), local.loss * local.samples, local.samples);
  await ring.allReduce(totals, { op: 'sum' });
  const [correct, lossSum, samples] = totals as unknown as [number, number, number];
  return { accuracy: correct / samples, loss: lossSum / samples, samples };
}
