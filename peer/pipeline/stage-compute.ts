import * as tf from '@tensorflow/tfjs';
import { crossEntropy, type OutputKind } from '../trainer/loss.js';
import type { DeferredWeightGradients } from './autodiff/deferred-tape.js';
import { runForward, type PendingBackward } from './checkpointing.js';
import { PipelineError } from './errors.js';
import { GradientAccumulator } from './gradient-accumulator.js';
import type { StageModule } from './partition/stage-module.js';

/** How the last stage turns its output into the loss. */
export interface LossSpec {
  numClasses: number;
  outputKind: OutputKind;
}

export interface StageComputeOptions {
  stage: StageModule;
  isFirst: boolean;
  /** The last stage also computes the loss; it needs `loss`. */
  isLast: boolean;
  loss?: LossSpec;
  rematerialize: boolean;
  /**
   * Dense weights' gradients once per mini-batch (one product over all micro-batches' rows, at
   * `gradients.take()`) instead of once per micro-batch. Default true; the same sum up to rounding.
   */
  deferWeightGradients?: boolean;
}

export interface ForwardResult {
  /** The stage's output for the next stage (not on the last stage). Owned by the caller: dispose it once sent. */
  output?: tf.Tensor;
  /** The micro-batch's scaled loss (last stage only). */
  scaledLoss?: number;
  /** Samples of the micro-batch classified right by this forward, before the update (last stage only). */
  correct?: number;
}

/**
 * The arithmetic of one stage, one micro-batch at a time: forward (keeping what the backward needs),
 * backward given the gradient of the stage's output, gradients accumulated for the optimizer.
 */
export class StageCompute {
  readonly gradients: GradientAccumulator;
  private readonly variables: tf.Variable[];
  private readonly pending = new Map<number, { state: PendingBackward; input: tf.Tensor }>();
  private heldBytesNow = 0;
  private readonly deferred: DeferredWeightGradients | undefined;

  constructor(private readonly options: StageComputeOptions) {
    if (options.isLast && !options.loss) throw new PipelineError('usage', 'the last stage needs a loss specification (numClasses, outputKind)');
    if (options.rematerialize) refuseUnrepeatableLayers(options.stage);
    this.variables = options.stage.trainableVariables;
    this.gradients = new GradientAccumulator(this.variables);
    if (options.deferWeightGradients ?? true) {
      const indexOf = new Map(this.variables.map((variable, i) => [variable.id, i]));
      const gradients = this.gradients;
      this.deferred = { weightIds: new Set(indexOf.keys()), keep: (id, a, dy) => gradients.keep(indexOf.get(id)!, a, dy) };
    }
  }

  /** Micro-batches whose forward ran and whose backward has not. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Bytes held for pending backward passes. */
  get heldBytes(): number {
    return this.heldBytesNow;
  }

  /**
   * Forward pass of micro-batch `micro`. Takes ownership of `input`. The last stage needs the
   * micro-batch's labels and its share of the mini-batch (`lossScale`).
   */
  forward(micro: number, input: tf.Tensor, target?: { labels: Int32Array; lossScale: number }): ForwardResult {
    if (this.pending.has(micro)) {
      input.dispose();
      throw new PipelineError('desync', `micro-batch ${micro} ran its forward pass twice`);
    }
    const { stage, isLast } = this.options;
    let labels: tf.Tensor1D | undefined;
    let correct: number | undefined;
    let fn = (x: tf.Tensor): tf.Tensor => stage.apply(x, true);
    if (isLast) {
      if (!target) {
        input.dispose();
        throw new PipelineError('usage', 'the last stage needs the labels of each micro-batch');
      }
      const { numClasses, outputKind } = this.options.loss!;
      const scale = target.lossScale;
      const labelTensor = tf.tensor1d(target.labels, 'int32');
      labels = labelTensor;
      fn = (x) => {
        const output = stage.apply(x, true);
        // Counted on the first run only: re-materialisation runs this forward again in the backward.
        correct ??= tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(output, -1), labelTensor), 'int32')).dataSync()[0]!);
        return tf.mul(crossEntropy(output, labelTensor, numClasses, outputKind), scale);
      };
    }
    let state: PendingBackward;
    try {
      state = runForward(fn, input, { rematerialize: this.options.rematerialize, weights: this.variables });
    } catch (error) {
      labels?.dispose();
      throw error;
    }
    // The labels tensor lives as long as the state: re-materialisation needs it again.
    const discard = state.discard.bind(state);
    const backward = state.backward.bind(state);
    const owned: PendingBackward = {
      output: state.output,
      heldBytes: state.heldBytes,
      backward: (wrt, dy, deferred) => {
        try {
          return backward(wrt, dy, deferred);
        } finally {
          labels?.dispose();
        }
      },
      discard: () => {
        discard();
        labels?.dispose();
      },
    };
    this.pending.set(micro, { state: owned, input });
    this.heldBytesNow += state.heldBytes;
    if (!isLast) return { output: state.output };
    const scaledLoss = state.output.dataSync()[0]!;
    state.output.dispose();
    return { scaledLoss, ...(correct !== undefined ? { correct } : {}) };
  }

  /**
   * Backward pass of micro-batch `micro`, given the gradient of its output (none on the last stage:
   * the loss is the output). Accumulates the weight gradients and returns the gradient of the stage's
   * input for the previous stage (none on the first stage). Takes ownership of `outputGradient`.
   */
  backward(micro: number, outputGradient?: tf.Tensor): tf.Tensor | undefined {
    const entry = this.pending.get(micro);
    if (!entry) {
      outputGradient?.dispose();
      throw new PipelineError('desync', `backward pass of micro-batch ${micro}, whose forward has not run (or whose backward already ran)`);
    }
    this.pending.delete(micro);
    this.heldBytesNow -= entry.state.heldBytes;
    const { isFirst } = this.options;
    const wrt = isFirst ? this.variables : [entry.input, ...this.variables];
    let gradients: (tf.Tensor | null)[];
    try {
      gradients = entry.state.backward(wrt, outputGradient, this.deferred);
    } finally {
      outputGradient?.dispose();
    }
    const inputGradient = isFirst ? undefined : (gradients.shift() ?? undefined);
    this.gradients.add(gradients);
    return inputGradient;
  }

  /** Frees everything held (after a failed step). */
  discardAll(): void {
    for (const { state, input } of this.pending.values()) {
      state.discard();
      if (!input.isDisposed) input.dispose();
    }
    this.pending.clear();
    this.heldBytesNow = 0;
    this.gradients.discard();
  }
}

/**
 * Layers whose training forward pass cannot be run twice with the same result: random masks or noise
 * (drawn again on recompute, so the gradients would belong to another forward), or moving statistics
 * (updated again on recompute).
 */
const UNREPEATABLE_LAYERS = new Set(['Dropout', 'SpatialDropout1D', 'GaussianDropout', 'GaussianNoise', 'AlphaDropout', 'BatchNormalization']);

function refuseUnrepeatableLayers(stage: StageModule): void {
  const offending = stage.layers.filter((layer) => UNREPEATABLE_LAYERS.has(layer.getClassName()));
  if (offending.length > 0) {
    throw new PipelineError(
      'usage',
      `stage ${stage.index} cannot re-materialise: ${offending.map((l) => `'${l.name}' (${l.getClassName()})`).join(', ')} would not repeat its forward pass exactly; train this model without re-materialisation`,
    );
  }
}
