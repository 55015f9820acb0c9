// The zero-copy Identity / Cast on wasm share a tensor's bytes instead of copying them: values
// must be unchanged, each reference must keep the bytes alive on its own, and the last
// dispose must free them (no leak in tfjs's bookkeeping nor in the wasm backend's).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { useWasmTrainingKernels } from './wasm-kernels-support.js';

useWasmTrainingKernels();

const backendDataIds = (): number => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();

describe('zero-copy Identity and Cast on wasm', () => {
  it('shares the bytes: a clone outlives its source, and the last dispose frees them', () => {
    const baseline = { tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, dataIds: backendDataIds() };
    const source = tf.tensor2d([1.5, -2, 3.25, 4, 5, -6], [2, 3]);
    const clone = tf.clone(source);
    const sameType = tf.cast(source, 'float32');
    expect(backendDataIds()).toBe(baseline.dataIds + 1); // one buffer, three tensors
    source.dispose();
    expect(Array.from(clone.dataSync())).toEqual([1.5, -2, 3.25, 4, 5, -6]);
    clone.dispose();
    expect(Array.from(sameType.dataSync())).toEqual([1.5, -2, 3.25, 4, 5, -6]);
    expect(sameType.shape).toEqual([2, 3]);
    sameType.dispose();
    expect({ tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, dataIds: backendDataIds() }).toEqual(baseline);
  });

  it('still converts between dtypes', () => {
    const ints = tf.tensor1d([1, -2, 3], 'int32');
    const floats = tf.cast(ints, 'float32');
    const backToInts = tf.cast(tf.tensor1d([1.7, -2.2, 3.9]), 'int32');
    expect(floats.dtype).toBe('float32');
    expect(Array.from(floats.dataSync())).toEqual([1, -2, 3]);
    expect(Array.from(backToInts.dataSync())).toEqual([1, -2, 3]);
    tf.dispose([ints, floats, backToInts]);
  });

  it('keeps gradients intact through ops that save their inputs for the backward pass', () => {
    const x = tf.tensor1d([0.5, -1, 2]);
    const [value, grad] = tf.tidy(() => {
      const { value: v, grad: g } = tf.valueAndGrad((t: tf.Tensor) => tf.sum(tf.mul(tf.exp(t), t)))(x);
      return [v.dataSync()[0]!, Array.from(g.dataSync())];
    });
    const expectedGrad = [0.5, -1, 2].map((v) => Math.exp(v) * (1 + v));
    expect(value).toBeCloseTo([0.5, -1, 2].reduce((s, v) => s + Math.exp(v) * v, 0), 5);
    grad.forEach((g, i) => expect(g).toBeCloseTo(expectedGrad[i]!, 5));
    x.dispose();
  });
});
