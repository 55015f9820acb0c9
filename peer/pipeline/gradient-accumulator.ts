import * as tf from '@tensorflow/tfjs';

/**
 * Sums each variable's gradient over the micro-batches of a mini-batch, so the optimizer steps once per
 * mini-batch with the mini-batch's gradient (each micro-batch's loss was already scaled by its share).
 */
export class GradientAccumulator {
  private sums: tf.Tensor[] | undefined;

  constructor(private readonly variables: readonly tf.Variable[]) {}

  /** Adds one micro-batch's gradients (in `variables` order) and takes ownership of them. */
  add(gradients: readonly tf.Tensor[]): void {
    if (gradients.length !== this.variables.length) {
      tf.dispose([...gradients]);
      throw new Error(`expected ${this.variables.length} gradients, got ${gradients.length}`);
    }
    if (!this.sums) {
      this.sums = [...gradients];
      return;
    }
    const sums = this.sums;
    this.sums = sums.map((sum, i) => tf.add(sum, gradients[i]!));
    tf.dispose([...sums, ...gradients]);
  }

  get isEmpty(): boolean {
    return this.sums === undefined;
  }

  /** The summed gradients keyed by variable name, as optimizer.applyGradients wants; resets the sums. */
  take(): tf.NamedTensorMap {
    if (!this.sums) throw new Error('no gradients were accumulated for this mini-batch');
    const named: tf.NamedTensorMap = {};
    this.variables.forEach((variable, i) => (named[variable.name] = this.sums![i]!));
    this.sums = undefined;
    return named;
  }

  discard(): void {
    if (this.sums) tf.dispose(this.sums);
    this.sums = undefined;
  }
}
