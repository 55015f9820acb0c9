import type * as tf from '@tensorflow/tfjs';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { evaluate, type Evaluation } from '../trainer/evaluate.js';
import type { OutputKind } from '../trainer/loss.js';
import { yieldToEventLoop } from './yield-to-event-loop.js';

/**
 * `evaluate` one batch-sized part of the dataset at a time, yielding to the event loop in between
 * so the coordinator link stays alive during a long evaluation on a busy machine. The parts are
 * exactly evaluate's own batches, so the numbers are the same as one `evaluate` call.
 */
export async function evaluateResponsively(
  model: tf.LayersModel,
  data: ImageDataset,
  options: { batchSize: number; outputKind: OutputKind; inputShape: number[] },
  onProgress?: (done: number, total: number) => void,
): Promise<Evaluation> {
  const pixels = data.height * data.width * data.channels;
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < data.count; start += options.batchSize) {
    const count = Math.min(options.batchSize, data.count - start);
    const part: ImageDataset = {
      ...data,
      images: data.images.subarray(start * pixels, (start + count) * pixels),
      labels: data.labels.subarray(start, start + count),
      count,
    };
    const result = await evaluate(model, part, options);
    correct += Math.round(result.accuracy * count);
    lossSum += result.loss * count;
    onProgress?.(start + count, data.count);
    await yieldToEventLoop();
  }
  return { accuracy: correct / data.count, loss: lossSum / data.count, samples: data.count };
}
