import { describe, expect, it } from 'vitest';
import { contextFor, sampleSeed } from '../shared/data/pipeline/transform.js';

// Values from the implementation before the per-sample generator became lazy: augmentations (and so
// every batch after a resume) must not change with how the context is built.
const GOLDEN: { args: [number, number, number, number]; seed: number; firstDraw: number }[] = [
  { args: [0, 0, 0, 0], seed: 744138621, firstDraw: 809736109 },
  { args: [7, 1, 3, 59999], seed: 2971651836, firstDraw: 2062857696 },
  { args: [123456, 2, 9, 42], seed: 3004857948, firstDraw: 3865226664 },
  { args: [0xffffffff, 0x5eed, 4, 0], seed: 3942825358, firstDraw: 231841295 },
];

describe('a sample\'s transform context', () => {
  it('derives the same seed and the same first random draw as before', () => {
    for (const { args, seed, firstDraw } of GOLDEN) {
      expect(sampleSeed(...args)).toBe(seed);
      expect(contextFor(...args).random.nextUint32()).toBe(firstDraw);
    }
  });

  it('hands out one generator per sample, continuing its sequence across reads', () => {
    const ctx = contextFor(7, 1, 3, 59999);
    expect(ctx.random).toBe(ctx.random);
    const draws = [ctx.random.nextUint32(), ctx.random.nextUint32()];
    const fresh = contextFor(7, 1, 3, 59999).random;
    expect([fresh.nextUint32(), fresh.nextUint32()]).toEqual(draws);
    expect(ctx).toMatchObject({ epoch: 3, sampleIndex: 59999 });
  });
});
