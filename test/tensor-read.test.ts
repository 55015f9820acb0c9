// copyFloat32Into reads a tensor's values into a caller's buffer: from the wasm heap in place, or
// through dataSync on other backends; the same values either way.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { copyFloat32Into } from '../shared/engine/tensor-read.js';

describe.each(['wasm', 'cpu'])('copyFloat32Into on the %s backend', (backend) => {
  it('copies the values at the offset and leaves the rest of the target alone', async () => {
    await tf.setBackend(backend);
    const values = Float32Array.from({ length: 37 }, (_, i) => (i - 18) / 7);
    const tensor = tf.tensor(values, [37]);
    const target = new Float32Array(45).fill(-1);
    copyFloat32Into(tensor, target, 5);
    expect(Array.from(target.subarray(5, 42))).toEqual(Array.from(values));
    expect([...target.subarray(0, 5), ...target.subarray(42)].every((v) => v === -1)).toBe(true);
    // The copy is ours: changing it does not change the tensor.
    target[5] = 1234;
    expect((tensor.dataSync() as Float32Array)[0]).toBe(values[0]);
    tensor.dispose();
  });

  it('says what is wrong with a tensor it cannot read', async () => {
    await tf.setBackend(backend);
    const ints = tf.tensor([1, 2, 3], [3], 'int32');
    expect(() => copyFloat32Into(ints, new Float32Array(3))).toThrow(/float32/);
    ints.dispose();
    const gone = tf.tensor([1, 2, 3]);
    gone.dispose();
    expect(() => copyFloat32Into(gone, new Float32Array(3))).toThrow(/disposed/);
  });
});
