import * as tf from '@tensorflow/tfjs';

/**
 * Sums each variable's gradient over the micro-batches of a mini-batch, so the optimizer steps once per
 * mini-batch with the mini-batch's gradient (each micro-batch's loss was already scaled by its share).
 * A dense weight's gradient may instead arrive as factors (`keep`): its micro-batches' inputs and
 * output gradients, multiplied once per mini-batch in `take` (see DeferredWeightGradients).
 */
export class GradientAccumulator {
  private sums: (tf.Tensor | undefined)[] | undefined;
  private factors = new Map<number, { a: tf.Tensor[]; dy: tf.Tensor[] }>();

  constructor(private readonly variables: readonly tf.Variable[]) {}

  /** Adds one micro-batch's gradients (in `variables` order; null: kept as factors) and takes ownership of them. */
  add(gradients: readonly (tf.Tensor | null)[]): void {
    if (gradients.length !== this.variables.length) {
      tf.dispose(gradients.filter((g): g is tf.Tensor => g !== null));
      throw new Error(`expected ${this.variables.length} gradients, got ${gradients.length}`);
    }
    const sums = this.sums ?? this.variables.map(() => undefined);
    this.sums = sums.map((sum, i) => plus(sum, gradients[i] ?? undefined));
  }

  /** Keeps one micro-batch's factors of variable `index`'s gradient, aᵀ·dy; takes ownership of both. */
  keep(index: number, a: tf.Tensor, dy: tf.Tensor): void {
    const entry = this.factors.get(index) ?? { a: [], dy: [] };
    entry.a.push(a);
    entry.dy.push(dy);
    this.factors.set(index, entry);
  }

  /** Rows of kept factors not yet multiplied (over all micro-batches, the first kept weight's). */
  get keptRows(): number {
    const first = this.factors.values().next().value;
    return first ? first.a.reduce((rows, a) => rows + (a.shape[0] ?? 0), 0) : 0;
  }

  /**
   * Multiplies the factors kept so far into the sums, once at least `minRows` rows are kept: a stage
   * with idle time before the flush spends it on these products instead of doing them all at `take`.
   */
  settle(minRows = 0): void {
    if (this.factors.size === 0 || this.keptRows < minRows) return;
    const sums = this.sums ?? this.variables.map(() => undefined);
    for (const [index, { a, dy }] of this.factors) {
      // One product over all kept rows instead of one per micro-batch.
      const product = tf.tidy(() => tf.matMul(a.length === 1 ? a[0]! : tf.concat(a, 0), dy.length === 1 ? dy[0]! : tf.concat(dy, 0), true, false));
      tf.dispose([...a, ...dy]);
      sums[index] = plus(sums[index], product);
    }
    this.factors.clear();
    this.sums = sums;
  }

  get isEmpty(): boolean {
    return this.sums === undefined && this.factors.size === 0;
  }

  /** The summed gradients keyed by variable name, as optimizer.applyGradients wants; resets the sums. */
  take(): tf.NamedTensorMap {
    if (this.isEmpty) throw new Error('no gradients were accumulated for this mini-batch');
    this.settle();
    const sums = this.sums!;
    const named: tf.NamedTensorMap = {};
    this.variables.forEach((variable, i) => (named[variable.name] = sums[i] ?? tf.zeros(variable.shape)));
    this.sums = undefined;
    return named;
  }

  discard(): void {
    if (this.sums) tf.dispose(this.sums.filter((s): s is tf.Tensor => s !== undefined));
    for (const { a, dy } of this.factors.values()) tf.dispose([...a, ...dy]);
    this.factors.clear();
    this.sums = undefined;
  }
}

/** sum + gradient, taking ownership of both (either may be missing: then the other, as it is). */
function plus(sum: tf.Tensor | undefined, gradient: tf.Tensor | undefined): tf.Tensor | undefined {
  if (!gradient) return sum;
  if (!sum) return gradient;
  const next = tf.add(sum, gradient);
  sum.dispose();
  gradient.dispose();
  return next;
}
