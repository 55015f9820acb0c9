import { Prng } from '../../shared/random/prng.js';

/**
 * On a host shared with other work, a pass does not take its mean time: the process is descheduled
 * for a while now and then, so some passes take much longer. Modelled as a renewal process: a pass
 * of mean wall time d takes a Gamma-distributed time with mean d and variance κ·d (κ, in ms, measured
 * per host: the variance of a step's wall time ÷ its mean). Where processes wait for each other (the
 * all-reduce, a pipeline's neighbours), the slowest of them sets the pace, so the expected step is
 * longer than the sum of mean passes: the planner averages simulations with sampled pass times.
 */
export function sampleDuration(meanMs: number, kappaMs: number, prng: Prng): number {
  if (!(kappaMs > 0) || !(meanMs > 0)) return meanMs;
  const shape = meanMs / kappaMs;
  return sampleGamma(shape, prng) * kappaMs;
}

/** Gamma(shape, 1) by Marsaglia and Tsang; shapes below 1 via Gamma(shape + 1) · U^(1/shape). */
function sampleGamma(shape: number, prng: Prng): number {
  if (shape < 1) return sampleGamma(shape + 1, prng) * prng.next() ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(prng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = prng.next();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

function normal(prng: Prng): number {
  // Box–Muller; 1 − next() is in (0, 1], so the log is finite.
  return Math.sqrt(-2 * Math.log(1 - prng.next())) * Math.cos(2 * Math.PI * prng.next());
}

/** κ from a series of step times: variance ÷ mean (0 for fewer than two steps). */
export function kappaOf(stepsMs: readonly number[]): number {
  if (stepsMs.length < 2) return 0;
  const mean = stepsMs.reduce((a, b) => a + b, 0) / stepsMs.length;
  const variance = stepsMs.reduce((total, x) => total + (x - mean) ** 2, 0) / (stepsMs.length - 1);
  return mean > 0 ? variance / mean : 0;
}

/** Monte Carlo replications of a prediction with sampled pass times; fixed seed, so plans repeat. */
export const JITTER_SAMPLES = 64;
export const JITTER_SEED = 7;
