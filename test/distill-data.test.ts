/**
 * Distillation reads through the data pipeline: the student's global batches (sliced by rank,
 * resumable at any step) and the teacher's in-order batches.
 */
import { describe, expect, it } from 'vitest';
import { inOrderBatches, transferSetBatches } from '../peer/distillation/distillation-data.js';
import { gatherBatch } from '../shared/data/epoch-batches.js';
import type { ImageDataset } from '../shared/data/mnist.js';
import type { DataIterator } from '../shared/data/pipeline/data-iterator.js';

/** 50 images of 2×2 pixels; pixel bytes from the index, so a batch names its samples. */
const data: ImageDataset = {
  images: Uint8Array.from({ length: 50 * 4 }, (_, i) => (i * 37) % 256),
  labels: Uint8Array.from({ length: 50 }, (_, i) => i % 10),
  count: 50,
  height: 2,
  width: 2,
  channels: 1,
  numClasses: 10,
};
const training = { samples: 30, batchSize: 8, seed: 3 }; // 3 global batches per epoch, 6 samples dropped

async function indicesOf(iterator: Pick<DataIterator, 'next' | 'close'>, count: number): Promise<number[][]> {
  try {
    const out: number[][] = [];
    for (let i = 0; i < count; i++) out.push([...(await iterator.next()).sampleIndices]);
    return out;
  } finally {
    await iterator.close();
  }
}

describe('distillation data', () => {
  it('student: global batches of the transfer set, the same whatever the number of peers, resumable after any step', async () => {
    const whole = await indicesOf(transferSetBatches(data, training, 0, 1, 0), 7);
    expect(whole.every((b) => b.length === 8 && b.every((i) => i < 30))).toBe(true);
    expect(new Set(whole.slice(0, 3).flat()).size).toBe(24); // one epoch: distinct samples
    expect(whole.slice(3, 6).flat()).not.toEqual(whole.slice(0, 3).flat()); // reshuffled
    const [rank0, rank1] = await Promise.all([indicesOf(transferSetBatches(data, training, 0, 2, 0), 7), indicesOf(transferSetBatches(data, training, 1, 2, 0), 7)]);
    expect(rank0.map((b, s) => [...b, ...rank1[s]!])).toEqual(whole);
    for (const after of [2, 3, 5]) expect(await indicesOf(transferSetBatches(data, training, 0, 1, after), 7 - after)).toEqual(whole.slice(after));
  });

  it('teacher: samples [start, end) in order, the last batch partial, features as gatherBatch scaled them', async () => {
    const iterator = inOrderBatches(data, 10, 31, 8, 'test');
    const batches = [await iterator.next(), await iterator.next(), await iterator.next()];
    await iterator.close();
    expect(batches.map((b) => b.size)).toEqual([8, 8, 5]);
    const order = Uint32Array.from({ length: 21 }, (_, i) => 10 + i);
    batches.forEach((batch, b) => {
      const expected = gatherBatch(data, order, b * 8, Math.min(b * 8 + 8, 21));
      expect(batch.xs).toEqual(expected.xs);
      expect(batch.labels).toEqual(expected.labels);
    });
  });
});
