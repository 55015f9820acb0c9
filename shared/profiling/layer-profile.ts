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
  /**
   * Median time of forward + backward for the weights only, without the input gradient: what training
   * computes for the layers before (and including) the model's first layer with weights, and a first
   * pipeline stage for its leading layers, since nothing upstream needs that gradient. Equals the
   * forward time for a layer without weights.
   */
  weightGradientsOnlyMs: number;
  /**
   * The same three as CPU time of this process (median). On a machine shared with other work, wall
   * times include waiting for a core, and medians of short passes miss most of that waiting while a
   * whole step does not; CPU time is the work itself, whatever the load.
   */
  cpu: { forwardMs: number; forwardBackwardMs: number; weightGradientsOnlyMs: number };
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

/** Wall-clock and CPU milliseconds of one timed pass. */
interface Timing {
  wallMs: number;
  cpuMs: number;
}

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

function timed(run: () => void): Timing {
  const wall = performance.now();
  const cpu = cpuNowMs();
  run();
  return { wallMs: performance.now() - wall, cpuMs: cpuNowMs() - cpu };
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
  const forward: Timing[][] = layers.map(() => []);
  const forwardBackward: Timing[][] = layers.map(() => []);
  const weightsOnly: Timing[][] = layers.map(() => []);
  for (let round = 0; round < warmUp + repeats; round++) {
    const timedRound = round >= warmUp;
    let input = makeInput(batchSize, inputShape);
    for (const [i, layer] of layers.entries()) {
      let output: tf.Tensor | undefined;
      const forwardTiming = timed(() => {
        output = tf.tidy(() => layer.apply(input, { training: true }) as tf.Tensor);
        // Reading the result forces backends that queue work (webgl) to finish it.
        output.dataSync();
      });
      const backwardTiming = timeForwardBackward(layer, input, output!.shape, true);
      const weightsOnlyTiming = layer.trainableWeights.length > 0 ? timeForwardBackward(layer, input, output!.shape, false) : forwardTiming;
      if (timedRound) {
        forward[i]!.push(forwardTiming);
        forwardBackward[i]!.push(backwardTiming);
        weightsOnly[i]!.push(weightsOnlyTiming);
      }
      input.dispose();
      input = output!;
    }
    input.dispose();
  }
  const wall = (timings: Timing[]) => median(timings.map((t) => t.wallMs));
  const cpu = (timings: Timing[]) => median(timings.map((t) => t.cpuMs));
  return layers.map((layer, i) => ({
    index: i,
    name: layer.name,
    className: layer.getClassName(),
    parameters: layer.countParams(),
    outputValuesPerSample: valuesPerSample(layer.outputShape),
    forwardMs: wall(forward[i]!),
    forwardBackwardMs: wall(forwardBackward[i]!),
    weightGradientsOnlyMs: wall(weightsOnly[i]!),
    cpu: { forwardMs: cpu(forward[i]!), forwardBackwardMs: cpu(forwardBackward[i]!), weightGradientsOnlyMs: cpu(weightsOnly[i]!) },
  }));
}

/**
 * One vector-Jacobian product through `layer`: what a pipeline stage does per layer and micro-batch.
 * Without `withInputGradient` only the weights' gradients are taken (tfjs then skips the input's).
 */
function timeForwardBackward(layer: tf.layers.Layer, input: tf.Tensor, outputShape: number[], withInputGradient: boolean): Timing {
  const weights = layer.trainableWeights.map((w) => w.read());
  const dy = tf.randomUniform(outputShape, -1, 1, 'float32', 2);
  let gradients: { value: tf.Tensor; grads: tf.Tensor[] } | undefined;
  const timing = timed(() => {
    // Seeded with dy itself, as a stage's backward is: differentiating sum(output · dy) instead added
    // four passes over the output (multiply, sum and their gradients), a third of a convolution's time.
    gradients = tf.engine().gradients(() => layer.apply(input, { training: true }) as tf.Tensor, withInputGradient ? [input, ...weights] : weights, dy, true);
    for (const gradient of gradients.grads) gradient?.dataSync();
  });
  tf.dispose([dy, gradients!.value, ...gradients!.grads.filter((g) => g !== undefined)]);
  return timing;
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
