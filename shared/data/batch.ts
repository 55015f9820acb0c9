/** A batch ready for the trainer: features as floats (pixels scaled to [0, 1]), labels as class indices. */
export interface Batch {
  xs: Float32Array;
  labels: Int32Array;
  size: number;
}

/** Where an iterator stands; saving it in a checkpoint and restoring it continues with the same batches. */
export interface BatchPosition {
  epoch: number;
  /** Index of the next sample within the epoch's order. */
  index: number;
}
