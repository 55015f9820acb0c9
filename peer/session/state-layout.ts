import { createHash } from 'node:crypto';

/** One tensor of the training state, in the order the state is flattened. */
export interface StateEntry {
  owner: 'model' | 'optimizer';
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  size: number;
}

/**
 * The training state (model weights, then optimizer slots) as one flat Float32Array: the shape in
 * which it is broadcast around the ring to a peer that joins or rolls back. Every peer derives the
 * layout from the same job, and the coordinator refuses a peer whose layout hash differs (another
 * model file, another optimizer) rather than letting it receive garbage.
 */
export interface StateLayout {
  entries: StateEntry[];
  elements: number;
  /** Hash of owners, shapes and dtypes (not names: tfjs numbers layer names per process). */
  hash: string;
}

export function describeLayout(entries: StateEntry[]): StateLayout {
  const elements = entries.reduce((sum, entry) => sum + entry.size, 0);
  const hash = createHash('sha256')
    .update(JSON.stringify(entries.map((e) => [e.owner, e.shape, e.dtype])))
    .digest('hex')
    .slice(0, 32);
  return { entries, elements, hash };
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}
