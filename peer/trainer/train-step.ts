import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../shared/data/batch.js';
import { acceptsFlatGradients, type FlatGradients } from '../../shared/engine/flat-gradients.js';
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

/**
 * The same exchange leaving its result in one flat buffer (valid until its next call), for an
 * optimizer that reads it there (FusedAdam): no gradient tensor is rebuilt. Takes the tensors it receives.
 */
export interface FlatGradientExchange {
  flat(grads: tf.NamedTensorMap): Promise<FlatGradients>;
}

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
  /**
   * Multiplies the loss before differentiating, so every gradient comes out multiplied by it: a
   * data-parallel rank's share of the global batch costs one op on the [batch, classes] loss
   * gradient instead of a pass over every gradient value. The reported loss is unscaled.
   */
  lossScale?: number;
}

/** Forward, backward and one optimizer update on a batch, with gradients exposed in between. */
export async function trainStep(ctx: StepContext, batch: Batch, exchange?: GradientExchange | FlatGradientExchange, options: StepOptions = {}): Promise<StepResult> {
  const started = performance.now();
  const lossScale = options.lossScale ?? 1;
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
      const lossValue = crossEntropy(outputs, labels, ctx.numClasses, ctx.outputKind);
      return lossScale === 1 ? lossValue : tf.mul(lossValue, lossScale);
    }, trainable));
  } finally {
    xs.dispose();
    labels.dispose();
  }
  const loss = (await lossTensor.data())[0]! / lossScale;
  lossTensor.dispose();
  let accuracy: number | undefined;
  if (correct) {
    accuracy = (await correct.data())[0]! / batch.size;
    correct.dispose();
  }
  let exchangeMs = 0;
  if (exchange && typeof exchange !== 'function') {
    const exchangeStart = performance.now();
    const flat = await exchange.flat(grads);
    exchangeMs = performance.now() - exchangeStart;
    // An exchange that updated the weights itself: that part of its time was computing.
    if (flat.appliedMs !== undefined) exchangeMs -= flat.appliedMs;
    else applyFlat(ctx.optimizer, flat);
  } else {
    if (exchange) {
      const exchangeStart = performance.now();
      grads = await exchange(grads);
      exchangeMs = performance.now() - exchangeStart;
    }
    ctx.optimizer.applyGradients(grads);
    tf.dispose(grads);
  }
  return { loss, computeMs: performance.now() - started - exchangeMs, exchangeMs, ...(accuracy !== undefined ? { accuracy } : {}) };
}

/** Applies flat gradients: straight from the buffer when the optimizer can, else through tensors over it. */
function applyFlat(optimizer: tf.Optimizer, flat: FlatGradients): void {
  if (acceptsFlatGradients(optimizer)) {
    optimizer.applyFlatGradients(flat);
    return;
  }
  const grads: tf.NamedTensorMap = {};
  for (const entry of flat.entries) {
    if (entry.control) continue;
    const variable = tf.engine().registeredVariables[entry.name];
    if (!variable) throw new Error(`no variable named '${entry.name}' for its gradient`);
    grads[entry.name] = tf.tensor(flat.values.subarray(entry.offset, entry.offset + entry.size), variable.shape, 'float32');
  }
  try {
    optimizer.applyGradients(grads);
  } finally {
    tf.dispose(grads);
  }
}
