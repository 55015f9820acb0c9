import * as tf from '@tensorflow/tfjs';
import { recordForward, type DeferredWeightGradients, type RecordedForward } from './autodiff/deferred-tape.js';

/**
 * What a stage keeps between the forward and the backward pass of one micro-batch, GPipe's two
 * options:
 * - keep the activations: the forward runs once, recording its tape; the tape holds every tensor the
 *   backward needs until it runs;
 * - re-materialise: keep only the stage's input; the forward runs again, recorded, at backward time.
 *   Memory per micro-batch in flight drops to one input tensor; the price is one more forward pass.
 */
export interface PendingBackward {
  /** The forward's output (the last stage's: its scaled loss). Owned by the caller. */
  readonly output: tf.Tensor;
  /** Bytes held for the backward pass. */
  readonly heldBytes: number;
  /**
   * Gradients of sum(output · dy) w.r.t. `wrt` (dy defaults to ones); weight gradients left to
   * `deferred` come back null (see DeferredWeightGradients). Frees what was held.
   */
  backward(wrt: readonly tf.Tensor[], dy?: tf.Tensor, deferred?: DeferredWeightGradients): (tf.Tensor | null)[];
  discard(): void;
}

/**
 * Runs `forward(input)` for training (`weights`: the stage's variables, not counted as held). Takes ownership of `input`: it is disposed once no longer
 * needed (at once when keeping activations, after the backward when re-materialising).
 */
export function runForward(forward: (input: tf.Tensor) => tf.Tensor, input: tf.Tensor, options: { rematerialize: boolean; weights: readonly tf.Tensor[] }): PendingBackward {
  return options.rematerialize ? rematerialized(forward, input) : keptActivations(forward, input, options.weights);
}

function keptActivations(forward: (input: tf.Tensor) => tf.Tensor, input: tf.Tensor, weights: readonly tf.Tensor[]): PendingBackward {
  let recorded: RecordedForward;
  try {
    recorded = recordForward(() => forward(input), weights);
  } finally {
    input.dispose();
  }
  return {
    output: recorded.output,
    heldBytes: recorded.savedBytes,
    backward: (wrt, dy, deferred) => recorded.backward(wrt, dy, deferred),
    discard: () => recorded.discard(),
  };
}

function rematerialized(forward: (input: tf.Tensor) => tf.Tensor, input: tf.Tensor): PendingBackward {
  let output: tf.Tensor;
  try {
    // No tape is recording here, so the forward's intermediates are freed as it goes.
    output = tf.tidy(() => forward(input));
  } catch (error) {
    input.dispose();
    throw error;
  }
  return {
    output,
    heldBytes: input.size * 4,
    backward(wrt, dy, deferred) {
      try {
        const recorded = recordForward(() => forward(input));
        recorded.output.dispose();
        return recorded.backward(wrt, dy, deferred);
      } finally {
        input.dispose();
      }
    },
    discard: () => input.dispose(),
  };
}
