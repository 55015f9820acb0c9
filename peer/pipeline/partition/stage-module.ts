import * as tf from '@tensorflow/tfjs';

/** One named weight's values, for checkpoints, tests and the replicas' all-reduce. */
export interface NamedWeight {
  name: string;
  shape: number[];
  values: Float32Array;
}

/**
 * The consecutive layers of a model that one pipeline stage runs. The layers are the model's own
 * objects (weights are shared, not copied), applied one after the other as in the model.
 */
export class StageModule {
  constructor(
    /** Position of the stage in the pipeline, 0-based. */
    readonly index: number,
    readonly layers: readonly tf.layers.Layer[],
    /** Index in the whole model of this stage's first layer. */
    readonly firstLayer: number,
    /** Shape of one sample entering the stage (without the batch dimension). */
    readonly inputShape: readonly number[],
    /** Shape of one sample leaving the stage. */
    readonly outputShape: readonly number[],
  ) {}

  /** The stage's forward pass. Creates intermediate tensors: call inside tf.tidy or a recorded forward. */
  apply(input: tf.Tensor, training: boolean): tf.Tensor {
    let output = input;
    for (const layer of this.layers) output = layer.apply(output, { training }) as tf.Tensor;
    return output;
  }

  /** The variables the optimizer updates, in layer order. */
  get trainableVariables(): tf.Variable[] {
    return this.layers.flatMap((layer) => layer.trainableWeights.map((weight) => weight.read() as tf.Variable));
  }

  get parameterCount(): number {
    return this.layers.reduce((total, layer) => total + layer.countParams(), 0);
  }

  /** Copies of every trainable weight's values, in layer order. */
  async readWeights(): Promise<NamedWeight[]> {
    const weights: NamedWeight[] = [];
    for (const variable of this.trainableVariables) {
      weights.push({ name: variable.name, shape: [...variable.shape], values: (await variable.data()) as Float32Array });
    }
    return weights;
  }

  describe(): string {
    const last = this.firstLayer + this.layers.length - 1;
    return `stage ${this.index}: layers ${this.firstLayer}–${last} (${this.layers.map((l) => l.name).join(', ')}), ${this.parameterCount} parameters, [${this.inputShape.join('×')}] → [${this.outputShape.join('×')}]`;
  }
}
