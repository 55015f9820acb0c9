import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../shared/data/batch.js';
import { crossEntropy, type OutputKind } from './loss.js';

export interface StepContext {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  inputShape: number[];
  numClasses: number;
  outputKind: OutputKind;
}

/**
 * Replaces the local gradients before they are applied: the data-parallel trainer averages
 * them across peers here. Receives and must return tensors it owns.
 */
export type GradientExchange = (grads: tf.NamedTensorMap) => Promise<tf.NamedTensorMap>;

export interface StepResult {
  loss: number;
  /** Milliseconds spent in forward + backward + optimizer update. */
  computeMs: number;
  /** Milliseconds spent inside the gradient exchange. */
  exchangeMs: number;
  /** Share of the batch classified right by the forward pass (before the update); when asked for. */
  accuracy?: number;
}

export interface StepOptions {
  /** Also count correct predictions (an argMax over the outputs already computed; off by default for benchmarks). */
  accuracy?: boolean;
}

/** Forward, backward and one optimizer update on a batch, with gradients exposed in between. */
export async function trainStep(ctx: StepContext, batch: Batch, exchange?: GradientExchange, options: StepOptions = {}): Promise<StepResult> {
  const started = performance.now();
  const xs = tf.tensor(batch.xs, [batch.size, ...ctx.inputShape]);
  const labels = tf.tensor1d(batch.labels, 'int32');
  const trainable = ctx.model.trainableWeights.map((w) => w.read() as tf.Variable);
  let lossTensor: tf.Scalar;
  let grads: tf.NamedTensorMap;
  let correct: tf.Scalar | undefined;
  try {
    ({ value: lossTensor, grads } = ctx.optimizer.computeGradients(() => {
      const outputs = ctx.model.apply(xs, { training: true }) as tf.Tensor;
      // Kept out of the gradient tape's tidy; not on the path to the loss, so no gradient flows through it.
      if (options.accuracy) correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(outputs, -1), labels), 'float32')));
      return crossEntropy(outputs, labels, ctx.numClasses, ctx.outputKind);
    }, trainable));
  } finally {
    xs.dispose();
    labels.dispose();
  }
  const loss = (await lossTensor.data())[0]!;
  lossTensor.dispose();
  let accuracy: number | undefined;
  if (correct) {
    accuracy = (await correct.data())[0]! / batch.size;
    correct.dispose();
  }
  let exchangeMs = 0;
  if (exchange) {
    const exchangeStart = performance.now();
    grads = await exchange(grads);
    exchangeMs = performance.now() - exchangeStart;
  }
  ctx.optimizer.applyGradients(grads);
  tf.dispose(grads);
  return { loss, computeMs: performance.now() - started - exchangeMs, exchangeMs, ...(accuracy !== undefined ? { accuracy } : {}) };
}
