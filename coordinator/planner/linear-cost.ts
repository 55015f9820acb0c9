/**
 * Time of one pass as a function of the samples in it: a fixed part (kernel launches, per-op
 * bookkeeping: what a micro-batch pays whatever its size) plus a part per sample.
 */
export interface LinearCost {
  fixedMs: number;
  perSampleMs: number;
}

export const ZERO_COST: LinearCost = { fixedMs: 0, perSampleMs: 0 };

export function costAt(cost: LinearCost, samples: number): number {
  return cost.fixedMs + cost.perSampleMs * samples;
}

export function addCosts(a: LinearCost, b: LinearCost): LinearCost {
  return { fixedMs: a.fixedMs + b.fixedMs, perSampleMs: a.perSampleMs + b.perSampleMs };
}

export function subtractCosts(a: LinearCost, b: LinearCost): LinearCost {
  return { fixedMs: Math.max(0, a.fixedMs - b.fixedMs), perSampleMs: Math.max(0, a.perSampleMs - b.perSampleMs) };
}

export function scaleCost(cost: LinearCost, factor: number): LinearCost {
  return { fixedMs: cost.fixedMs * factor, perSampleMs: cost.perSampleMs * factor };
}

/**
 * The line through two measurements (batch sizes `small` < `large`). Noise can tilt it below zero at
 * either end; it is then clamped to a cost that is never negative and still matches the larger batch.
 */
export function fitLinear(small: { samples: number; ms: number }, large: { samples: number; ms: number }): LinearCost {
  if (!(large.samples > small.samples)) throw new Error(`fitLinear needs two different batch sizes, got ${small.samples} and ${large.samples}`);
  const perSampleMs = (large.ms - small.ms) / (large.samples - small.samples);
  const fixedMs = small.ms - perSampleMs * small.samples;
  if (perSampleMs < 0) return { fixedMs: Math.max(0, large.ms), perSampleMs: 0 };
  if (fixedMs < 0) return { fixedMs: 0, perSampleMs: Math.max(0, large.ms) / large.samples };
  return { fixedMs, perSampleMs };
}
