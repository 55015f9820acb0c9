// Shared by the wasm-kernels tests: seeded randomness and the agreement measure.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll } from 'vitest';
import { registerWasmTrainingKernels, unregisterWasmTrainingKernels } from '../shared/engine/wasm-kernels/index.js';

/** Every wasm result must agree with the pure-JS cpu backend within this relative error. */
export const TOLERANCE = 1e-4;

/** mulberry32: small and reproducible, so a failing case can be replayed from its seed. */
export class SeededRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(options: readonly T[]): T {
    return options[this.int(0, options.length - 1)]!;
  }
  floats(count: number): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.next() * 2 - 1;
    return out;
  }
}

/** max|actual − expected| / max|expected| over all elements (Infinity on length or NaN mismatch). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  if (Number.isNaN(maxDiff)) return Infinity;
  return maxRef === 0 ? (maxDiff === 0 ? 0 : Infinity) : maxDiff / maxRef;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export async function onBackend<T>(name: 'cpu' | 'wasm', body: () => T): Promise<T> {
  await tf.setBackend(name);
  return body();
}

/** Runs the calling test file on the wasm backend with the training kernels registered, and unregisters them after it. */
export function useWasmTrainingKernels(): void {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    registerWasmTrainingKernels();
  });
  afterAll(() => {
    unregisterWasmTrainingKernels();
  });
}
