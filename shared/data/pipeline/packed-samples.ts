import type { ItemOutcome } from './run-stages.js';

/**
 * A chunk's finished samples as one feature buffer and one label buffer, the way a worker thread
 * hands them back when its maps are the last stage before `batch()`. Two transferable buffers
 * per chunk instead of one per sample: receiving a message with dozens of small typed arrays
 * cost the trainer's thread more than stacking the batch itself.
 */
export interface PackedOutcomes {
  /** Outcomes in the chunk (ok and failed). */
  count: number;
  featureCount: number;
  /** Features of the ok samples, in order, `featureCount` each. */
  xs: Float32Array;
  labels: Int32Array;
  /** The failed samples: their place in the chunk and their error outcome. */
  failures: { at: number; outcome: Extract<ItemOutcome, { ok: false }> }[];
}

/**
 * Packs outcomes whose ok values are all `{ x: Float32Array, label }` of one length with a class
 * index label; anything else (a pipeline that does not end in samples, a shape mismatch, a bad
 * label) returns undefined and travels unpacked, so `batch()` reports it as it always has.
 */
export function packOutcomes(outcomes: readonly ItemOutcome[]): PackedOutcomes | undefined {
  let featureCount: number | undefined;
  let ok = 0;
  for (const outcome of outcomes) {
    if (!outcome.ok) continue;
    const sample = outcome.value as { x?: unknown; label?: unknown } | null;
    if (typeof sample !== 'object' || sample === null || !(sample.x instanceof Float32Array)) return undefined;
    const label = sample.label;
    if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label > 0x7fffffff) return undefined;
    featureCount ??= sample.x.length;
    if (sample.x.length !== featureCount) return undefined;
    ok++;
  }
  const features = featureCount ?? 0;
  const xs = new Float32Array(ok * features);
  const labels = new Int32Array(ok);
  const failures: PackedOutcomes['failures'] = [];
  let row = 0;
  outcomes.forEach((outcome, at) => {
    if (!outcome.ok) {
      failures.push({ at, outcome });
      return;
    }
    const sample = outcome.value as { x: Float32Array; label: number };
    xs.set(sample.x, row * features);
    labels[row++] = sample.label;
  });
  return { count: outcomes.length, featureCount: features, xs, labels, failures };
}

/** Back to one outcome per sample; the samples' features are views into the packed buffer. */
export function unpackOutcomes(packed: PackedOutcomes): ItemOutcome[] {
  const { featureCount, xs, labels } = packed;
  const outcomes = new Array<ItemOutcome>(packed.count);
  for (const { at, outcome } of packed.failures) outcomes[at] = outcome;
  let row = 0;
  for (let at = 0; at < packed.count; at++) {
    if (outcomes[at]) continue;
    outcomes[at] = { ok: true, value: { x: xs.subarray(row * featureCount, (row + 1) * featureCount), label: labels[row]! } };
    row++;
  }
  return outcomes;
}
