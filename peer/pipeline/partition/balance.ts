import type { LayerProfile } from '../../../shared/profiling/layer-profile.js';
import { PipelineError } from '../errors.js';

/**
 * A balance is the number of consecutive layers in each stage, as in torchgpipe: `[3, 2]` puts layers
 * 0–2 in stage 0 and layers 3–4 in stage 1. Every stage holds at least one layer.
 */
export type Balance = number[];

/** Parses an explicit `--balance 3,2,…`. */
export function parseBalance(text: string): Balance {
  const parts = text.split(',').map((part) => part.trim());
  const balance = parts.map(Number);
  if (parts.some((part) => part === '') || balance.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new PipelineError('usage', `--balance must list positive layer counts separated by commas (e.g. 3,2), got '${text}'`);
  }
  return balance;
}

/** Throws unless `balance` splits exactly `layerCount` layers into stages of at least one layer. */
export function checkBalance(balance: Balance, layerCount: number): void {
  if (balance.length === 0 || balance.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new PipelineError('usage', `a balance lists at least one stage, each with a positive number of layers; got [${balance.join(', ')}]`);
  }
  const total = balance.reduce((a, b) => a + b, 0);
  if (total !== layerCount) {
    throw new PipelineError('usage', `balance [${balance.join(', ')}] covers ${total} layers but the model has ${layerCount}`);
  }
}

/**
 * Splits layers with the given costs into `stages` consecutive groups so that the most expensive
 * group is as cheap as possible (the pipeline runs at the pace of its slowest stage). Among splits
 * with that same slowest stage, the most even one wins (smallest sum of squared stage costs), so a
 * free layer such as Flatten does not end up alone in a stage. Exact, by dynamic programming.
 */
export function balanceByCost(costs: readonly number[], stages: number): Balance {
  const n = costs.length;
  if (!Number.isInteger(stages) || stages < 1) throw new PipelineError('usage', `the number of stages must be a positive integer, got ${stages}`);
  if (stages > n) throw new PipelineError('usage', `cannot split ${n} layers into ${stages} stages: every stage needs at least one layer`);
  if (costs.some((c) => !Number.isFinite(c) || c < 0)) throw new PipelineError('usage', `layer costs must be finite and non-negative, got [${costs.join(', ')}]`);
  const prefix = [0];
  for (const cost of costs) prefix.push(prefix[prefix.length - 1]! + cost);
  const span = (from: number, to: number): number => prefix[to]! - prefix[from]!;

  const slowest = solve(n, stages, (from, to) => span(from, to), (parts) => Math.max(...parts));
  return solve(n, stages, (from, to) => (span(from, to) <= slowest.value ? span(from, to) ** 2 : Infinity), (parts) => parts.reduce((a, b) => a + b, 0)).balance;
}

/**
 * Minimum over splits of `combine(cost of each part)` for a `combine` that is max or sum (both
 * decompose over a prefix). best[k][i]: first i layers in k stages.
 */
function solve(n: number, stages: number, partCost: (from: number, to: number) => number, combine: (parts: number[]) => number): { value: number; balance: Balance } {
  const best: number[][] = Array.from({ length: stages + 1 }, () => new Array<number>(n + 1).fill(Infinity));
  const cut: number[][] = Array.from({ length: stages + 1 }, () => new Array<number>(n + 1).fill(-1));
  best[0]![0] = 0;
  for (let k = 1; k <= stages; k++) {
    for (let i = k; i <= n - (stages - k); i++) {
      for (let j = k - 1; j < i; j++) {
        const before = best[k - 1]![j]!;
        if (before === Infinity) continue;
        const value = k === 1 ? partCost(j, i) : combine([before, partCost(j, i)]);
        if (value < best[k]![i]!) {
          best[k]![i] = value;
          cut[k]![i] = j;
        }
      }
    }
  }
  const balance: Balance = [];
  for (let k = stages, i = n; k > 0; k--) {
    const j = cut[k]![i]!;
    balance.unshift(i - j);
    i = j;
  }
  return { value: best[stages]![n]!, balance };
}

/** Balance by parameter count, the cheapest proxy for compute (dense layers: compute ∝ parameters). */
export function balanceByParameters(parameterCounts: readonly number[], stages: number): Balance {
  return balanceByCost(parameterCounts, stages);
}

/**
 * Balance by measured time (torchgpipe's balance_by_time): each layer costs its forward + backward
 * time from a profile of a few batches on this machine.
 */
export function balanceByTime(profiles: readonly Pick<LayerProfile, 'forwardBackwardMs'>[], stages: number): Balance {
  return balanceByCost(profiles.map((p) => p.forwardBackwardMs), stages);
}
