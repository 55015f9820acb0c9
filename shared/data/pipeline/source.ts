import type { SkippedRecord } from './data-error.js';

/**
 * Where samples come from: random access by index, so shard and shuffle can work on indices
 * and any position can be resumed. `read` returns a fresh element the caller owns (its typed
 * arrays may be transferred to a worker thread).
 */
export interface DataSource<T> {
  /** Identifies the source in messages and in saved positions, e.g. `csv:/data/iris.csv`. */
  readonly name: string;
  readonly size: number;
  read(index: number): T;
  /** Records left out when the source was opened with skip-and-count. */
  readonly skipped: readonly SkippedRecord[];
}

/** What `batch()` consumes: features as floats, the label as a class index. */
export interface Sample {
  x: Float32Array;
  label: number;
}

/** A decoded image with its label, pixels as bytes in height × width × channels order. */
export interface LabelledImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: number;
  label: number;
}
