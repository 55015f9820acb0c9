import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLocalRing } from '../peer/allreduce/local-channel.js';
import { RingCollective } from '../peer/allreduce/ring-collective.js';
import { Fp16Reducer } from '../peer/compression/fp16-reducer.js';
import { orthonormalizeColumns } from '../peer/compression/orthonormalize.js';
import { PlainReducer } from '../peer/compression/plain-reducer.js';
import { PowerSgdReducer } from '../peer/compression/powersgd-reducer.js';
import type { GradientReducer } from '../peer/compression/gradient-reducer.js';
import { backwardBuckets } from '../peer/data-parallel/backward-buckets.js';
import { fusedLayout, type FusedLayout } from '../peer/data-parallel/fused-layout.js';
import { Prng } from '../shared/random/prng.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function ring(n: number): RingCollective[] {
  return createLocalRing(n).map((channel, rank) => new RingCollective({ rank, worldSize: n, ...(n > 1 ? { channel } : {}) }, { chunkBytes: 4096, timeoutMs: 5_000 }));
}

function randomGradients(n: number, length: number, seed: number): Float32Array[] {
  const prng = new Prng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length }, () => prng.next() - 0.5));
}

/** Runs one reduction on every rank at once; returns the buffers afterwards. */
async function reduceAll(reducers: GradientReducer[], members: RingCollective[], inputs: Float32Array[], layout: FusedLayout): Promise<Float32Array[]> {
  const buffers = inputs.map((input) => input.slice());
  const share = 1 / members.length;
  await Promise.all(members.map((member, r) => reducers[r]!.reduce(buffers[r]!, { start: 0, end: layout.length }, member, share)));
  return buffers;
}

function sum(inputs: Float32Array[]): Float64Array {
  const out = new Float64Array(inputs[0]!.length);
  for (const input of inputs) input.forEach((v, i) => (out[i]! += v));
  return out;
}

const LAYOUT = fusedLayout([
  { name: 'kernel1', shape: [40, 30] },
  { name: 'bias1', shape: [30] },
  { name: 'kernel2', shape: [30, 5] },
  { name: 'bias2', shape: [5] },
]);

describe('fused layout', () => {
  it('lays variables end to end and cuts buckets at variable boundaries', () => {
    const layout = fusedLayout(LAYOUT.entries, 1000 * 4);
    expect(layout.length).toBe(40 * 30 + 30 + 150 + 5);
    expect(layout.entries.map((e) => e.offset)).toEqual([0, 1200, 1230, 1380]);
    // kernel1 alone exceeds the bucket, so it is one; the rest fit together.
    expect(layout.buckets).toEqual([{ start: 0, end: 1200 }, { start: 1200, end: 1385 }]);
    expect(fusedLayout(LAYOUT.entries).buckets).toEqual([{ start: 0, end: 1385 }]);
    expect(fusedLayout([]).buckets).toEqual([{ start: 0, end: 0 }]);
  });
});

describe('backward buckets', () => {
  it('orders buckets last layer first, cuts a large 2-D weight between rows, covers every element once', () => {
    const buckets = backwardBuckets(LAYOUT, 400 * 4);
    // From the end: bias2 + kernel2 + bias1 (185 values), then kernel1's last 8 rows of 30 fill the
    // bucket (whole rows, at least the size); then 14 rows, 14 rows and the first 4.
    expect(buckets.map((b) => b.region)).toEqual([
      { start: 960, end: 1385 },
      { start: 540, end: 960 },
      { start: 120, end: 540 },
      { start: 0, end: 120 },
    ]);
    expect(buckets[0]!.pieces.map((p) => [p.entry.name, p.rowStart, p.rowEnd])).toEqual([
      ['bias2', 0, 1],
      ['kernel2', 0, 30],
      ['bias1', 0, 1],
      ['kernel1', 32, 40],
    ]);
    const covered = new Uint8Array(LAYOUT.length);
    for (const bucket of buckets) {
      for (const piece of bucket.pieces) {
        expect(piece.region.start).toBeGreaterThanOrEqual(bucket.region.start);
        expect(piece.region.end).toBeLessThanOrEqual(bucket.region.end);
        for (let i = piece.region.start; i < piece.region.end; i++) covered[i]!++;
      }
    }
    expect(covered.every((c) => c === 1)).toBe(true);
    expect(backwardBuckets(LAYOUT, 1 << 30).map((b) => b.region)).toEqual([{ start: 0, end: 1385 }]);
    expect(() => backwardBuckets(LAYOUT, 0)).toThrow(/at least 4 bytes/);
  });
});

describe('gradient reducers on an in-process ring', () => {
  it('none: the exact sum on every rank', async () => {
    const members = ring(3);
    const inputs = randomGradients(3, LAYOUT.length, 1);
    const out = await reduceAll(members.map(() => new PlainReducer()), members, inputs, LAYOUT);
    const expected = sum(inputs);
    out[0]!.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-6));
    expect(Buffer.from(out[1]!.buffer).equals(Buffer.from(out[0]!.buffer))).toBe(true);
  });

  it('fp16: the rounding error is fed back, so over many steps nothing is lost', async () => {
    const members = ring(2);
    const reducers = members.map(() => new Fp16Reducer());
    // The same small gradient every step: each step's sum is off by the rounding, but the running
    // total of what was applied tracks the true running total to within one step's rounding.
    const inputs = randomGradients(2, LAYOUT.length, 2).map((g) => g.map((v) => v * 1e-3 + 1e-4));
    const applied = new Float64Array(LAYOUT.length);
    const steps = 50;
    for (let s = 0; s < steps; s++) {
      const out = await reduceAll(reducers, members, inputs, LAYOUT);
      expect(Buffer.from(out[1]!.buffer).equals(Buffer.from(out[0]!.buffer))).toBe(true);
      out[0]!.forEach((v, i) => (applied[i]! += v));
    }
    const truth = sum(inputs).map((v) => v * steps);
    let worstWithFeedback = 0;
    for (let i = 0; i < truth.length; i++) worstWithFeedback = Math.max(worstWithFeedback, Math.abs(applied[i]! - truth[i]!));
    // One step without feedback already errs by up to ~2^-11 relative; fed back, the error does not grow with steps.
    const oneStepRounding = Math.max(...sum(inputs).map((v) => Math.abs(v))) * 2 ** -10;
    expect(worstWithFeedback).toBeLessThan(2 * oneStepRounding);
  });

  it('PowerSGD: exact when the rank covers the matrices, identical on every rank, compressed on the wire', async () => {
    const members = ring(2);
    const layout = fusedLayout([{ name: 'w', shape: [8, 6] }, { name: 'b', shape: [6] }]);
    // Rank 6 ≥ min(8, 6): P̂ spans the column space, so P̂·Qᵀ reproduces the sum (up to rounding).
    const reducers = members.map(() => new PowerSgdReducer(layout, { seed: 3, rank: 6, minCompressionRate: 0 }));
    const inputs = randomGradients(2, layout.length, 3);
    const out = await reduceAll(reducers, members, inputs, layout);
    const expected = sum(inputs);
    out[0]!.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-5));
    expect(Buffer.from(out[1]!.buffer).equals(Buffer.from(out[0]!.buffer))).toBe(true);
  });

  it('PowerSGD with error feedback: approximation plus the ranks’ errors is exactly the true sum', async () => {
    const members = ring(3);
    const layout = fusedLayout([{ name: 'w', shape: [64, 48] }, { name: 'b', shape: [48] }]);
    const reducers = members.map(() => new PowerSgdReducer(layout, { seed: 5, rank: 2 }));
    const inputs = randomGradients(3, layout.length, 5);
    const out = await reduceAll(reducers, members, inputs, layout);
    const errors = reducers.map((r) => (r as unknown as { error: Float32Array }).error);
    const truth = sum(inputs);
    let worst = 0;
    let approximationError = 0;
    for (let i = 0; i < 64 * 48; i++) {
      worst = Math.max(worst, Math.abs(out[0]![i]! + errors.reduce((a, e) => a + e[i]!, 0) - truth[i]!));
      approximationError = Math.max(approximationError, Math.abs(out[0]![i]! - truth[i]!));
    }
    expect(worst).toBeLessThan(1e-5);
    // Rank 2 of random 64×48 matrices is a real approximation, not the identity.
    expect(approximationError).toBeGreaterThan(0.05);
    // Biases travel uncompressed: exact.
    for (let i = 64 * 48; i < layout.length; i++) expect(Math.abs(out[0]![i]! - truth[i]!)).toBeLessThan(1e-6);
    // Wire: P (64×2) + bias (48) + Q (48×2) floats instead of 64×48 + 48.
    expect(reducers[0]!.compressedElements).toBe(64 * 2 + 48 + 48 * 2);
  });

  it('PowerSGD with error feedback: the average applied gradient approaches the true one over steps', async () => {
    const members = ring(2);
    const layout = fusedLayout([{ name: 'w', shape: [32, 24] }]);
    const reducers = members.map(() => new PowerSgdReducer(layout, { seed: 9, rank: 1, minCompressionRate: 0 }));
    const inputs = randomGradients(2, layout.length, 9);
    const truth = sum(inputs);
    const relativeError = (applied: Float64Array, steps: number): number => {
      let error = 0;
      let norm = 0;
      truth.forEach((t, i) => {
        error += (applied[i]! / steps - t) ** 2;
        norm += t ** 2;
      });
      return Math.sqrt(error / norm);
    };
    const applied = new Float64Array(layout.length);
    let afterOneStep = NaN;
    const steps = 60;
    for (let s = 1; s <= steps; s++) {
      const out = await reduceAll(reducers, members, inputs, layout);
      out[0]!.forEach((v, i) => (applied[i]! += v));
      if (s === 1) afterOneStep = relativeError(applied, 1);
    }
    // Rank 1 of a random 32×24 matrix misses most of it in one step; fed back, the misses are
    // applied in later steps, so the average over many steps is far closer to the truth.
    expect(afterOneStep).toBeGreaterThan(0.5);
    expect(relativeError(applied, steps)).toBeLessThan(afterOneStep / 3);
  });
});

describe('orthonormalization', () => {
  it('gives orthonormal columns and zeroes a dependent one instead of producing NaN', () => {
    const m = Float32Array.from([1, 2, 2, 0, 4, 2, 3, 1, 6, 1, 0, 3]); // 4×3, third column = 2 × first
    orthonormalizeColumns(m, 4, 3);
    const col = (j: number) => [0, 1, 2, 3].map((i) => m[i * 3 + j]!);
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
    expect(dot(col(0), col(0))).toBeCloseTo(1, 5);
    expect(dot(col(1), col(1))).toBeCloseTo(1, 5);
    expect(dot(col(0), col(1))).toBeCloseTo(0, 5);
    expect(m.every((v) => Number.isFinite(v))).toBe(true);
  });
});
