import { PipelineError } from '../errors.js';

/**
 * An activation and its micro-batch's labels in one float32 tensor: the n · elements activation
 * values, then the n labels, their int32 bits stored as they are (an Int32Array view of the tail, so
 * any label value survives exactly). One frame, one write and one wake-up of the receiver per
 * micro-batch instead of two.
 */
export function labelledLength(samples: number, elementsPerSample: number): number {
  return samples * elementsPerSample + samples;
}

/** Writes `activation` and `labels` into `into` (length labelledLength(labels.length, …)). */
export function packLabelled(activation: Float32Array, labels: Int32Array, into: Float32Array): Float32Array {
  // writeLabels checks the length first, so a wrong `into` is refused before anything is written.
  writeLabels(into, activation.length, labels);
  into.set(activation);
  return into;
}

/** Writes `labels` after the first `activationLength` values of `into`, which already hold the activation; returns `into`. */
export function writeLabels(into: Float32Array, activationLength: number, labels: Int32Array): Float32Array {
  if (into.length !== activationLength + labels.length) {
    throw new PipelineError('usage', `a labelled activation of ${activationLength} values and ${labels.length} labels needs ${activationLength + labels.length} floats, got ${into.length}`);
  }
  new Int32Array(into.buffer, into.byteOffset + activationLength * 4, labels.length).set(labels);
  return into;
}

/** Views (no copies) of a received labelled activation of `samples` samples. */
export function unpackLabelled(data: Float32Array, samples: number, elementsPerSample: number): { activation: Float32Array; labels: Int32Array } {
  const values = samples * elementsPerSample;
  if (data.length !== values + samples) {
    throw new PipelineError('desync', `a labelled activation of ${samples} samples × ${elementsPerSample} values has ${values + samples} floats, got ${data.length}`);
  }
  return { activation: data.subarray(0, values), labels: new Int32Array(data.buffer, data.byteOffset + values * 4, samples) };
}
