/**
 * Splits layers into `stages` consecutive groups minimising the slowest group's cost, among splits
 * in which every group fits the memory of the peer that will run it (`fits(stage, from, to)`).
 * The pipeline's own balancer (`balanceByCost`) minimises time alone; this is the same dynamic
 * programme with memory as a constraint, for models that do not fit one peer. Undefined when no
 * split fits.
 */
export function balanceWithinMemory(costs: readonly number[], stages: number, fits: (stage: number, from: number, to: number) => boolean): number[] | undefined {
  const n = costs.length;
  if (stages < 1 || stages > n) return undefined;
  const prefix = [0];
  for (const cost of costs) prefix.push(prefix[prefix.length - 1]! + cost);
  // best[k][i]: slowest stage when the first i layers form k stages.
  const best = Array.from({ length: stages + 1 }, () => new Array<number>(n + 1).fill(Infinity));
  const cut = Array.from({ length: stages + 1 }, () => new Array<number>(n + 1).fill(-1));
  best[0]![0] = 0;
  for (let k = 1; k <= stages; k++) {
    for (let i = k; i <= n - (stages - k); i++) {
      for (let j = k - 1; j < i; j++) {
        if (best[k - 1]![j] === Infinity || !fits(k - 1, j, i)) continue;
        const value = Math.max(best[k - 1]![j]!, prefix[i]! - prefix[j]!);
        if (value < best[k]![i]!) {
          best[k]![i] = value;
          cut[k]![i] = j;
        }
      }
    }
  }
  if (best[stages]![n] === Infinity) return undefined;
  const balance: number[] = [];
  for (let k = stages, i = n; k > 0; k--) {
    const j = cut[k]![i]!;
    balance.unshift(i - j);
    i = j;
  }
  return balance;
}
