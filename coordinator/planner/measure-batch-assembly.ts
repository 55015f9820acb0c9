/**
 * What the first pipeline stage spends assembling each mini-batch (gathering its samples out of the
 * in-memory dataset into fresh input and label arrays) before its first forward pass: on the
 * pipeline's critical path, since every later stage waits for that forward. The data pipeline's own
 * `gatherBatch`, on a synthetic image dataset of the model's input shape; CPU time, a line in the
 * batch size.
 */
import { gatherBatch } from '../../shared/data/epoch-batches.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { fitLinear, type LinearCost } from './linear-cost.js';

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

export function measureBatchAssembly(options: { inputShape: number[]; numClasses: number; batchSizes: [number, number]; repeats?: number }): LinearCost {
  const [height = 1, width = 1, channels = 1] = options.inputShape.length === 3 ? options.inputShape : [1, options.inputShape.reduce((a, b) => a * b, 1), 1];
  const pixels = height * width * channels;
  const count = options.batchSizes[1] * 2;
  const data: ImageDataset = {
    images: Uint8Array.from({ length: count * pixels }, (_, i) => (i * 37) % 256),
    labels: Uint8Array.from({ length: count }, (_, i) => i % options.numClasses),
    count,
    height,
    width,
    channels,
    numClasses: options.numClasses,
  } as ImageDataset;
  const order = Uint32Array.from({ length: count }, (_, i) => (i * 7919) % count);
  const repeats = options.repeats ?? 7;
  const at = (samples: number): { samples: number; ms: number } => {
    gatherBatch(data, order, 0, samples);
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const from = (i * samples) % (count - samples + 1);
      const started = cpuNowMs();
      gatherBatch(data, order, from, from + samples);
      times.push(cpuNowMs() - started);
    }
    times.sort((a, b) => a - b);
    return { samples, ms: times[Math.floor(times.length / 2)]! };
  };
  return fitLinear(at(options.batchSizes[0]), at(options.batchSizes[1]));
}
