import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { decodeTable, denseTargets, emptyTable, encodeTable, writeTopK } from '../coordinator/distillation/soft-target-table.js';
import { distillationLoss } from '../peer/distillation/distillation-loss.js';

/**
 * The worked example, by hand (3 classes, label 1, T = 2, alpha = 0.7):
 *   student logits z = [1, 2, 0], teacher logits v = [3, 1, 0]
 *   hard  = −log softmax(z)[1] = −log(e² / (e + e² + 1))                         = 0.4076059644
 *   p     = softmax(v / 2) = softmax([1.5, 0.5, 0])  = [0.6285317, 0.2312239, 0.1402444]
 *   q     = softmax(z / 2) = softmax([0.5, 1, 0])
 *   KL    = Σ p (log p − log q)                                                  = 0.2288206569
 *   loss  = 0.3 · hard + 0.7 · 2² · KL = 0.1222818 + 0.6406978                   = 0.7629796287
 */
const Z = [1, 2, 0];
const P = [0.6285317192117624, 0.23122389762214907, 0.14024438316608848];
const HARD = 0.40760596444438046;
const KL = 0.2288206569344776;

function loss(alpha: number, temperature = 2, z = [Z], p = [P], labels = [1]): number {
  return tf.tidy(() => distillationLoss(tf.tensor2d(z), tf.tensor1d(labels, 'int32'), tf.tensor2d(p), { temperature, alpha, numClasses: 3 }).dataSync()[0]!);
}

describe('distillation loss (Hinton et al. 2015)', () => {
  it('matches the hand-computed example', () => {
    expect(loss(0.7)).toBeCloseTo(0.7629796287498514, 5);
  });

  it('alpha 0 is the hard-label cross-entropy, alpha 1 the soft term times T²', () => {
    expect(loss(0)).toBeCloseTo(HARD, 5);
    expect(loss(1)).toBeCloseTo(4 * KL, 5);
  });

  it('is 0 in the soft term when the student matches the teacher', () => {
    const matching = [3, 1, 0]; // the teacher's own logits: q = p at any temperature
    expect(loss(1, 2, [matching])).toBeCloseTo(0, 5);
  });

  it('averages over the batch', () => {
    const other = [0, 0, 3];
    const single = loss(0.7, 2, [other], [P], [2]);
    expect(loss(0.7, 2, [Z, other], [P, P], [1, 2])).toBeCloseTo((0.7629796287498514 + single) / 2, 5);
  });

  it('has the gradient T·(q − p) in the soft term, so T² keeps it the size of the hard term', () => {
    for (const t of [1, 2, 5]) {
      const grad = tf.tidy(() => {
        const p = tf.tensor2d([P]);
        const g = tf.grad((z: tf.Tensor) => distillationLoss(z, tf.tensor1d([1], 'int32'), p, { temperature: t, alpha: 1, numClasses: 3 }));
        return Array.from(g(tf.tensor2d([Z])).dataSync());
      });
      const q = softmax(Z.map((v) => v / t));
      grad.forEach((g, j) => expect(g).toBeCloseTo(t * (q[j]! - P[j]!), 5));
    }
  });

  it('refuses alpha > 0 without soft targets', () => {
    expect(() => tf.tidy(() => distillationLoss(tf.tensor2d([Z]), tf.tensor1d([1], 'int32'), undefined, { temperature: 2, alpha: 0.5, numClasses: 3 }))).toThrow(/soft targets/);
  });
});

describe('top-k soft-target table', () => {
  // Teacher logits [2, −1, 0.5, 1] at T = 2: full softmax = [0.4344, 0.0969, 0.2052, 0.2635].
  const logits = new Float32Array([2, -1, 0.5, 1]);

  it('keeps the top-k probabilities exact and spreads the rest evenly over the other classes', () => {
    const table = emptyTable(1, 4, 2, 2);
    writeTopK(table, 0, logits);
    expect(Array.from(table.classes)).toEqual([0, 3]);
    // log(e^(−1/2) + e^(0.5/2)) = 0.63687
    expect(table.tailLogMass[0]).toBeCloseTo(0.6368710061148999, 5);
    const dense = Array.from(denseTargets(table, [0]));
    const tailEach = (0.0969276746245708 + 0.20519588879044431) / 2; // 0.151062
    expect(dense[0]).toBeCloseTo(0.43439969997822314, 5);
    expect(dense[3]).toBeCloseTo(0.26347673660676174, 5);
    expect(dense[1]).toBeCloseTo(tailEach, 5);
    expect(dense[2]).toBeCloseTo(tailEach, 5);
    expect(dense.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });

  it('is the exact teacher distribution with k = C (and with k = C − 1)', () => {
    const full = softmax(Array.from(logits, (v) => v / 2));
    for (const k of [4, 3]) {
      const table = emptyTable(1, 4, k, 2);
      writeTopK(table, 0, logits);
      Array.from(denseTargets(table, [0])).forEach((p, j) => expect(p).toBeCloseTo(full[j]!, 6));
    }
  });

  it('survives encoding, and refuses a damaged table', () => {
    const table = emptyTable(3, 4, 2, 2);
    writeTopK(table, 0, new Float32Array([...logits, 0, 1, 2, 3, 5, 4, 3, 2]));
    const bytes = encodeTable(table);
    const back = decodeTable(bytes);
    expect(Array.from(denseTargets(back, [0, 1, 2]))).toEqual(Array.from(denseTargets(table, [0, 1, 2])));
    expect(() => decodeTable(bytes.subarray(0, bytes.length - 1))).toThrow(/expected/);
    const wrongClass = bytes.slice();
    wrongClass[wrongClass.length - 1] = 9;
    expect(() => decodeTable(wrongClass)).toThrow(/class 9/);
    expect(() => emptyTable(1, 4, 5, 2)).toThrow(/top-k/);
  });
});

function softmax(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
