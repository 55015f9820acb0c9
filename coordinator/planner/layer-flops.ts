import type * as tf from '@tensorflow/tfjs';

/**
 * Floating-point operations per sample of one layer, counted from its shapes (a multiply-add is 2):
 * the hardware-independent size of the work, beside the measured time. Backward is split in the
 * gradient for the weights and the gradient for the input, because training skips the latter for
 * the layers in front of the first layer with weights (nothing upstream needs it).
 */
export interface LayerFlops {
  forward: number;
  backwardWeights: number;
  backwardInput: number;
}

type Shape = (number | null)[];

const product = (dims: readonly (number | null)[]): number => dims.reduce<number>((total, d) => total * (d ?? 1), 1);
const perSample = (shape: Shape): number => product(shape.slice(1));

function singleShape(shape: tf.Shape | tf.Shape[]): Shape {
  return (Array.isArray(shape[0]) ? shape[0] : shape) as Shape;
}

/** Elementwise work of an activation function, per value (relu: a compare; softmax/tanh/sigmoid: a few). */
function activationFlops(config: Record<string, unknown>): number {
  const name = typeof config.activation === 'string' ? config.activation : 'linear';
  if (name === 'linear') return 0;
  return name === 'relu' || name === 'relu6' ? 1 : 4;
}

/**
 * A weighted layer computing `macs` multiply-adds per sample into `outputs` values, with an optional
 * bias and activation: forward 2·macs (+ bias, activation); each gradient another 2·macs.
 */
function weighted(macs: number, outputs: number, config: Record<string, unknown>): LayerFlops {
  const bias = config.useBias === false ? 0 : outputs;
  const activation = activationFlops(config) * outputs;
  return { forward: 2 * macs + bias + activation, backwardWeights: 2 * macs + bias + activation, backwardInput: 2 * macs };
}

/** Counts for the layer classes we know; undefined for others (reported as "not counted", never guessed). */
export function layerFlops(layer: tf.layers.Layer): LayerFlops | undefined {
  const className = layer.getClassName();
  const config = layer.getConfig() as Record<string, unknown>;
  const output = singleShape(layer.outputShape);
  const outputs = perSample(output);
  const kernel = layer.weights[0]?.shape;
  switch (className) {
    case 'Dense': {
      // kernel [in, units]; a Dense on a [steps, features] input runs once per step.
      const [inUnits, units] = kernel as [number, number];
      return weighted(inUnits * units * (outputs / units), outputs, config);
    }
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D': {
      // kernel [...window, inChannels, filters]: every output value takes window · inChannels products.
      const window = product((kernel as number[]).slice(0, -1));
      return weighted(window * outputs, outputs, config);
    }
    case 'DepthwiseConv2D': {
      // kernel [kh, kw, inChannels, multiplier]: every output value takes kh · kw products.
      const window = product((kernel as number[]).slice(0, 2));
      return weighted(window * outputs, outputs, config);
    }
    case 'MaxPooling1D':
    case 'MaxPooling2D':
    case 'AveragePooling1D':
    case 'AveragePooling2D': {
      const pool = config.poolSize;
      const window = Array.isArray(pool) ? product(pool as number[]) : Number(pool ?? 2);
      return { forward: outputs * window, backwardWeights: 0, backwardInput: outputs * window };
    }
    case 'GlobalAveragePooling1D':
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling1D':
    case 'GlobalMaxPooling2D': {
      const input = layer.input;
      const inputs = perSample((Array.isArray(input) ? input[0]! : input).shape);
      return { forward: inputs, backwardWeights: 0, backwardInput: inputs };
    }
    case 'Flatten':
    case 'Reshape':
    case 'InputLayer':
      // A reshape shares the bytes: no arithmetic.
      return { forward: 0, backwardWeights: 0, backwardInput: 0 };
    case 'Dropout':
    case 'Activation':
    case 'ReLU':
    case 'LeakyReLU':
    case 'Softmax': {
      const perValue = className === 'Dropout' ? 1 : className === 'Activation' ? activationFlops(config) : className === 'Softmax' ? 4 : 1;
      return { forward: perValue * outputs, backwardWeights: 0, backwardInput: perValue * outputs };
    }
    case 'BatchNormalization':
      // Normalise, scale, shift (≈ 4 per value) forward; their gradients (≈ 6 per value, split) backward.
      return { forward: 4 * outputs, backwardWeights: 2 * outputs, backwardInput: 4 * outputs };
    default:
      return undefined;
  }
}
