/** Where one variable's gradient sits in a flat buffer. */
export interface FlatGradientEntry {
  /** The variable's name (tf.Variable.name, as tfjs keys gradients). */
  name: string;
  offset: number;
  size: number;
  /** Not a gradient (a value an exchange carries alongside, such as a stop flag): skipped. */
  control?: boolean;
}

/** A step's gradients laid end to end in one buffer, such as the fused buffer after an all-reduce. */
export interface FlatGradients {
  values: Float32Array;
  entries: readonly FlatGradientEntry[];
  /**
   * Set when the exchange already applied the optimizer update (ZeRO-1 style: values then hold the
   * updated weights, already assigned): the milliseconds that update took inside the exchange.
   */
  appliedMs?: number;
}

/** An optimizer that applies gradients straight from a flat buffer, with no tensor per gradient. */
export interface FlatGradientOptimizer {
  applyFlatGradients(gradients: FlatGradients): void;
}

export function acceptsFlatGradients(optimizer: object): optimizer is FlatGradientOptimizer {
  return typeof (optimizer as Partial<FlatGradientOptimizer>).applyFlatGradients === 'function';
}
