import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../shared/data/epoch-batches.js';
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
}

/** Forward, backward and one optimizer update on a batch, with gradients exposed in between. */
export async function trainStep(ctx: StepContext, batch: Batch, exchange?: GradientExchange): Promise<StepResult> {
  const started = performance.now();
  const xs = tf.tensor(batch.xs, [batch.size, ...ctx.inputShape]);
  const labels = tf.tensor1d(batch.labels, 'int32');
  const trainable = ctx.model.trainableWeights.map((w) => w.read() as tf.Variable);
  let lossTensor: tf.Scalar;
  let grads: tf.NamedTensorMap;
  try {
    ({ value: lossTensor, grads } = ctx.optimizer.computeGradients(
      () => crossEntropy(ctx.model.apply(xs, { training: true }) as tf.Tensor, labels, ctx.numClasses, ctx.outputKind),
      trainable,
    ));
  } finally {
    xs.dispose();
    labels.dispose();
  }
  const loss = (await lossTensor.data())[0]!;
  lossTensor.dispose();
  let exchangeMs = 0;
  if (exchange) {
    const exchangeStart = performance.now();
    grads = await exchange(grads);
    exchangeMs = performance.now() - exchangeStart;
  }
  ctx.optimizer.applyGradients(grads);
  tf.dispose(grads);
  return { loss, computeMs: performance.now() - started - exchangeMs, exchangeMs };
}
