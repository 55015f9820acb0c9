import { describe, expect, it } from 'vitest';
import { EpochBatches, epochOrder } from '../shared/data/epoch-batches.js';
import type { ImageDataset } from '../shared/data/mnist.js';
import { Prng } from '../shared/random/prng.js';

function tinyDataset(count: number): ImageDataset {
  const images = new Uint8Array(count * 4);
  for (let i = 0; i < count; i++) images.fill(i % 256, i * 4, i * 4 + 4);
  return { images, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), count, height: 2, width: 2, channels: 1, numClasses: 10 };
}

describe('epoch batches', () => {
  it('visits every sample exactly once per epoch, in a seed-dependent order', () => {
    const order = epochOrder(1000, 7, 0, true);
    expect(new Set(order).size).toBe(1000);
    expect([...order]).not.toEqual([...epochOrder(1000, 7, 1, true)]);
    expect([...order]).toEqual([...epochOrder(1000, 7, 0, true)]);
  });

  it('scales pixels to [0, 1] and drops the partial last batch in training', () => {
    const batches = new EpochBatches(tinyDataset(10), { batchSize: 4, seed: 1, shuffle: false });
    expect(batches.batchesPerEpoch).toBe(2);
    const first = batches.next();
    expect([...first.labels]).toEqual([0, 1, 2, 3]);
    expect(first.xs[4]).toBeCloseTo(1 / 255);
    batches.next();
    expect(batches.next().labels[0]).toBe(0); // rolled into epoch 1
    expect(batches.current).toEqual({ epoch: 1, index: 4 });
  });

  it('resumes from a saved position with exactly the batches that would have come next', () => {
    const data = tinyDataset(50);
    const original = new EpochBatches(data, { batchSize: 8, seed: 3 });
    for (let i = 0; i < 9; i++) original.next();
    const saved = original.current;
    const expected = Array.from({ length: 5 }, () => [...original.next().labels]);
    const resumed = new EpochBatches(data, { batchSize: 8, seed: 3, start: saved });
    expect(Array.from({ length: 5 }, () => [...resumed.next().labels])).toEqual(expected);
  });
});

describe('prng', () => {
  it('is reproducible and restorable from its state', () => {
    const a = new Prng(5);
    a.next();
    const state = a.state();
    const b = new Prng(state);
    expect(Array.from({ length: 5 }, () => a.nextUint32())).toEqual(Array.from({ length: 5 }, () => b.nextUint32()));
    const values = Array.from({ length: 10000 }, () => new Prng(0).next());
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    const mean = Array.from({ length: 10000 }, ((g) => () => g.next())(new Prng(9))).reduce((s, v) => s + v, 0) / 10000;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.02);
  });
});
