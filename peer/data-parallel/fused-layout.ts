import type { Region } from '../allreduce/partition.js';

/** Where one variable's values sit in the fused buffer. */
export interface FusedEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
  /**
   * Not a gradient: a value the exchange writes itself (e.g. the session's stop flag) so that it
   * rides the same all-reduce instead of costing a round trip of its own. It is summed as written.
   */
  control?: boolean;
}

export interface FusedLayout {
  entries: FusedEntry[];
  length: number;
  /** Consecutive runs of whole variables, each at most `bucketBytes` unless one variable alone is larger. */
  buckets: Region[];
}

/**
 * Lays the variables end to end, in the order given (every rank must give the same order: the
 * model's trainable weights), and groups them into buckets for pipelined reduction.
 */
export function fusedLayout(variables: { name: string; shape: number[]; control?: boolean }[], bucketBytes = Infinity): FusedLayout {
  if (!(bucketBytes > 0)) throw new Error(`bucket size must be positive, got ${bucketBytes}`);
  const entries: FusedEntry[] = [];
  let offset = 0;
  for (const variable of variables) {
    const size = variable.shape.reduce((a, b) => a * b, 1);
    entries.push({ name: variable.name, shape: [...variable.shape], offset, size, ...(variable.control ? { control: true } : {}) });
    offset += size;
  }
  const buckets: Region[] = [];
  let start = 0;
  for (const entry of entries) {
    const end = entry.offset + entry.size;
    // Close the current bucket before this variable would push it past the limit.
    if (entry.offset > start && (end - start) * 4 > bucketBytes) {
      buckets.push({ start, end: entry.offset });
      start = entry.offset;
    }
  }
  if (offset > start || buckets.length === 0) buckets.push({ start, end: offset });
  return { entries, length: offset, buckets };
}
