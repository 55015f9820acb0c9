// The deferred tape's cheaper dense-layer input gradient (autodiff/matmul-gradient.ts) on the engine
// the stages train on (wasm, with the project's kernels): same gradients as tf.grads, and the engine
// left as it was found; and dense weights packed for XNNPACK ahead of their first product (weight-packing.ts).
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../shared/engine/select-backend.js';
import { recordForward } from '../peer/pipeline/autodiff/deferred-tape.js';
import { denseMatMulGradient } from '../peer/pipeline/autodiff/matmul-gradient.js';
import { GradientAccumulator } from '../peer/pipeline/gradient-accumulator.js';
import { StageModule } from '../peer/pipeline/partition/stage-module.js';
import { prepackDenseWeights } from '../peer/pipeline/weight-packing.js';

beforeAll(async () => {
  await selectBackend({ force: 'wasm' });
});

const relativeError = (a: tf.Tensor, b: tf.Tensor): number =>
  tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / Math.max(1e-30, tf.max(tf.abs(b)).dataSync()[0]!));

describe('deferred tape, dense micro-batches', () => {
  it('a micro-batch through 512→256→10 dense layers gets the gradients tf.grads gives (input and weights)', () => {
    const w1 = tf.variable(tf.randomNormal([512, 256], 0, 0.05, 'float32', 1));
    const b1 = tf.variable(tf.zeros([256]));
    const w2 = tf.variable(tf.randomNormal([256, 10], 0, 0.05, 'float32', 2));
    const x = tf.randomNormal([32, 512], 0, 1, 'float32', 3);
    const dy = tf.randomNormal([32, 10], 0, 1, 'float32', 4);
    const forward = (input: tf.Tensor) => tf.matMul(tf.relu(tf.add(tf.matMul(input, w1), b1)), w2);
    const reference = tf.engine().gradients(() => tf.sum(tf.mul(forward(x), dy)), [x, w1, b1, w2]);
    const addTapeNode = (tf.engine() as unknown as { addTapeNode: unknown }).addTapeNode;
    const recorded = recordForward(() => forward(x), [w1, b1, w2]);
    // recordForward restores the engine's own addTapeNode.
    expect((tf.engine() as unknown as { addTapeNode: unknown }).addTapeNode).toBe(addTapeNode);
    expect(Object.prototype.hasOwnProperty.call(tf.engine(), 'addTapeNode')).toBe(false);
    const grads = recorded.backward([x, w1, b1, w2], dy);
    grads.forEach((g, i) => expect(relativeError(g, reference.grads[i]!)).toBeLessThan(1e-5));
    tf.dispose([recorded.output, ...grads, x, dy, w1, b1, w2, reference.value, ...reference.grads]);
  });

  it('swaps the operands only for untransposed 2-D products smaller than the weight', () => {
    const a = tf.zeros([32, 512]);
    const b = tf.zeros([512, 256]);
    const dy = tf.zeros([32, 256]);
    expect(denseMatMulGradient({ transposeA: false, transposeB: false }, [a, b], dy)).toBeDefined();
    expect(denseMatMulGradient({ transposeA: true, transposeB: false }, [a, b], dy)).toBeUndefined();
    expect(denseMatMulGradient(undefined, [a, b], dy)).toBeUndefined();
    const swapped = denseMatMulGradient({}, [a, b], dy)!.a!();
    expect(swapped.shape).toEqual([32, 512]);
    tf.dispose([a, b, dy, swapped]);
  });

  it('weight gradients deferred to the update: null per micro-batch, and one product over all micro-batches equals tf.grads on the whole batch', () => {
    const w1 = tf.variable(tf.randomNormal([512, 256], 0, 0.05, 'float32', 5));
    const b1 = tf.variable(tf.zeros([256]));
    const w2 = tf.variable(tf.randomNormal([256, 10], 0, 0.05, 'float32', 6));
    const variables = [w1, b1, w2];
    const x = tf.randomNormal([128, 512], 0, 1, 'float32', 7);
    const dy = tf.randomNormal([128, 10], 0, 1, 'float32', 8);
    const forward = (input: tf.Tensor) => tf.matMul(tf.relu(tf.add(tf.matMul(input, w1), b1)), w2);
    const reference = tf.engine().gradients(() => tf.sum(tf.mul(forward(x), dy)), [x, ...variables]);
    const before = tf.memory().numTensors;
    const accumulator = new GradientAccumulator(variables);
    const indexOf = new Map(variables.map((v, i) => [v.id, i]));
    const deferred = { weightIds: new Set(indexOf.keys()), keep: (id: number, a: tf.Tensor, g: tf.Tensor) => accumulator.keep(indexOf.get(id)!, a, g) };
    const inputGradients: tf.Tensor[] = [];
    for (let m = 0; m < 4; m++) {
      const [xm, dym] = [tf.slice(x, [32 * m, 0], [32, 512]), tf.slice(dy, [32 * m, 0], [32, 10])];
      const recorded = recordForward(() => forward(xm), variables);
      const [dx, ...grads] = recorded.backward([xm, ...variables], dym, deferred);
      // Only the bias gradient is computed per micro-batch.
      expect(grads.map((g) => g === null)).toEqual([true, false, true]);
      inputGradients.push(dx!);
      accumulator.add(grads);
      tf.dispose([recorded.output, xm, dym]);
    }
    const taken = accumulator.take();
    const dx = tf.concat(inputGradients, 0);
    expect(relativeError(dx, reference.grads[0]!)).toBeLessThan(1e-5);
    variables.forEach((v, i) => expect(relativeError(taken[v.name]!, reference.grads[i + 1]!)).toBeLessThan(1e-5));
    tf.dispose([dx, ...inputGradients, ...Object.values(taken)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, dy, ...variables, reference.value, ...reference.grads]);
  });
});

describe('dense weights packed ahead of their first product', () => {
  it('after each update, prepacking leaves the fused (inference) and the recorded (training) forward exact', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, activation: 'relu', inputShape: [16] })] });
    const stage = new StageModule(1, [model.layers[0]!], 0, [16], [4]);
    const [kernel, bias] = stage.trainableVariables as [tf.Variable, tf.Variable];
    const x = tf.randomNormal([8, 16], 0, 1, 'float32', 11);
    const xs = x.dataSync();
    for (let update = 0; update < 2; update++) {
      // An optimizer step gives the weights new tensors, as FusedAdam's assign does.
      kernel.assign(tf.randomNormal([16, 4], 0, 1, 'float32', 20 + update));
      bias.assign(tf.randomNormal([4], 0, 1, 'float32', 30 + update));
      const [w, b] = [kernel.dataSync(), bias.dataSync()];
      const expected = Array.from({ length: 8 * 4 }, (_, i) => {
        const [row, col] = [Math.floor(i / 4), i % 4];
        let sum = b[col]!;
        for (let k = 0; k < 16; k++) sum += xs[row * 16 + k]! * w[k * 4 + col]!;
        return Math.max(0, sum);
      });
      prepackDenseWeights(stage);
      const fused = tf.tidy(() => stage.apply(x, false));
      const recorded = recordForward(() => stage.apply(x, true), stage.trainableVariables);
      for (const output of [fused, recorded.output]) {
        const got = output.dataSync();
        expected.forEach((value, i) => expect(got[i]).toBeCloseTo(value, 4));
      }
      recorded.discard();
      tf.dispose([fused, recorded.output]);
    }
    tf.dispose(x);
    model.dispose();
  });
});
