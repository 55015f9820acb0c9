import * as tf from '@tensorflow/tfjs';

/**
 * What one layer of a sequential model costs, measured on this machine's tensor backend: the input
 * of balancing a pipeline by time (torchgpipe's balance_by_time) and of planning which peer can hold
 * which layers (parameters, activation sizes).
 */
export interface LayerProfile {
  index: number;
  name: string;
  className: string;
  parameters: number;
  /** Values per sample this layer outputs: what crosses a stage boundary placed after it. */
  outputValuesPerSample: number;
  /** Median time of the layer's forward pass on one batch (training mode). */
  forwardMs: number;
  /** Median time of forward + backward (gradients for the input and the weights) on one batch. */
  forwardBackwardMs: number;
}

export interface ProfileOptions {
  /** Samples per profiled batch. Default 32. */
  batchSize?: number;
  /** Timed repetitions per layer; the median is kept. Default 5. */
  repeats?: number;
  /** Untimed repetitions first (kernel set-up, first-touch of memory). Default 1. */
  warmUp?: number;
  /** Builds the model's input for a batch; default uniform noise in [0, 1). */
  makeInput?(batchSize: number, shape: readonly number[]): tf.Tensor;
}

/**
 * Profiles a chain of layers (each feeding the next) layer by layer: every layer is timed on the
 * output of the previous one, forward alone and forward + backward.
 */
export function profileLayers(layers: readonly tf.layers.Layer[], inputShape: readonly number[], options: ProfileOptions = {}): LayerProfile[] {
  const batchSize = options.batchSize ?? 32;
  const repeats = options.repeats ?? 5;
  const warmUp = options.warmUp ?? 1;
  const makeInput = options.makeInput ?? ((n, shape) => tf.randomUniform([n, ...shape], 0, 1, 'float32', 1));
  const forward: number[][] = layers.map(() => []);
  const forwardBackward: number[][] = layers.map(() => []);
  for (let round = 0; round < warmUp + repeats; round++) {
    const timed = round >= warmUp;
    let input = makeInput(batchSize, inputShape);
    for (const [i, layer] of layers.entries()) {
      const started = performance.now();
      const output = tf.tidy(() => layer.apply(input, { training: true }) as tf.Tensor);
      // Reading the result forces backends that queue work (webgl) to finish it.
      output.dataSync();
      const forwardMs = performance.now() - started;
      const backwardMs = timeForwardBackward(layer, input, output.shape);
      if (timed) {
        forward[i]!.push(forwardMs);
        forwardBackward[i]!.push(backwardMs);
      }
      input.dispose();
      input = output;
    }
    input.dispose();
  }
  return layers.map((layer, i) => ({
    index: i,
    name: layer.name,
    className: layer.getClassName(),
    parameters: layer.countParams(),
    outputValuesPerSample: valuesPerSample(layer.outputShape),
    forwardMs: median(forward[i]!),
    forwardBackwardMs: median(forwardBackward[i]!),
  }));
}

/** One vector-Jacobian product through `layer`: what a pipeline stage does per layer and micro-batch. */
function timeForwardBackward(layer: tf.layers.Layer, input: tf.Tensor, outputShape: number[]): number {
  const weights = layer.trainableWeights.map((w) => w.read());
  const dy = tf.randomUniform(outputShape, -1, 1, 'float32', 2);
  const started = performance.now();
  const gradients = tf.engine().gradients(() => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, dy)) as tf.Scalar, [input, ...weights], undefined, true);
  for (const gradient of gradients.grads) gradient?.dataSync();
  const ms = performance.now() - started;
  tf.dispose([dy, gradients.value, ...gradients.grads.filter((g) => g !== undefined)]);
  return ms;
}

function valuesPerSample(shape: tf.Shape | tf.Shape[]): number {
  const single = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
  return single.slice(1).reduce<number>((total, d) => total * (d ?? 1), 1);
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
