import { Prng } from '../../random/prng.js';
import type { DataSource } from '../pipeline/source.js';

/** A fixed seed: the held-out test set must not move when the job's training seed changes. */
const SPLIT_SEED = 0x7e57;

/** The samples of `source` at `indices`, in that order, as a source of its own. */
export function subsetSource<T>(source: DataSource<T>, indices: Uint32Array, name: string): DataSource<T> {
  return { name, size: indices.length, skipped: source.skipped, read: (index) => source.read(indices[index]!) };
}

/**
 * Splits one source into training and test parts: a fixed pseudo-random `fraction` (at least one
 * sample) is held out for testing. Both parts keep the source's order, and the split is the same
 * on every peer and in every run.
 */
export function holdOut<T>(source: DataSource<T>, fraction: number): { train: DataSource<T>; test: DataSource<T> } {
  const order = new Uint32Array(source.size);
  for (let i = 0; i < order.length; i++) order[i] = i;
  new Prng(SPLIT_SEED).shuffle(order);
  const testCount = Math.min(source.size - 1, Math.max(1, Math.round(source.size * fraction)));
  const test = order.slice(0, testCount).sort();
  const train = order.slice(testCount).sort();
  return { train: subsetSource(source, train, `${source.name} minus held-out ${fraction}`), test: subsetSource(source, test, `${source.name} held-out ${fraction}`) };
}
