import * as tf from '@tensorflow/tfjs';
import { recordForward } from '../../peer/pipeline/autodiff/deferred-tape.js';

/**
 * Bytes a layer keeps for its backward pass, per sample, counted as a pipeline stage counts them
 * (unique tensors on the recorded tape, weights excluded: `recordForward`'s own accounting).
 */
export interface LayerMemory {
  /** Kept by this layer alone, per sample (its input included when its gradient needs it). */
  keptBytesPerSample: number;
  /**
   * Of that, bytes the previous layer keeps too (the same tensor: e.g. a Dense layer keeping its
   * input, which Flatten kept as its own): counted once when both sit in one stage.
   */
  sharedWithPreviousBytesPerSample: number;
}

/**
 * Records each layer's forward alone, and each adjacent pair's, on a small batch; the pair shows what
 * two neighbours keep in common. Per sample: activations grow linearly with the batch.
 */
export function measureLayerMemory(layers: readonly tf.layers.Layer[], inputShape: readonly number[], samples = 4): LayerMemory[] {
  const inputs: tf.Tensor[] = [tf.randomUniform([samples, ...inputShape], 0, 1, 'float32', 3)];
  const kept: number[] = [];
  const weightsOf = (from: number, to: number) => layers.slice(from, to).flatMap((l) => l.trainableWeights.map((w) => w.read()));
  const keptBytes = (from: number, to: number): number => {
    const recorded = recordForward(() => layers.slice(from, to).reduce((x, layer) => layer.apply(x, { training: true }) as tf.Tensor, inputs[from]!), weightsOf(from, to));
    const bytes = recorded.savedBytes;
    recorded.discard();
    recorded.output.dispose();
    return bytes;
  };
  try {
    for (let i = 0; i < layers.length; i++) {
      kept.push(keptBytes(i, i + 1));
      inputs.push(tf.tidy(() => layers[i]!.apply(inputs[i]!, { training: true }) as tf.Tensor));
    }
    return layers.map((_, i) => ({
      keptBytesPerSample: kept[i]! / samples,
      sharedWithPreviousBytesPerSample: i === 0 ? 0 : Math.max(0, kept[i - 1]! + kept[i]! - keptBytes(i - 1, i + 1)) / samples,
    }));
  } finally {
    tf.dispose(inputs);
  }
}

/** Bytes per sample the layers `from`…`to − 1`, run as one stage, keep for backward. */
export function stageKeptBytesPerSample(memory: readonly LayerMemory[], from: number, to: number): number {
  let bytes = 0;
  for (let i = from; i < to; i++) bytes += memory[i]!.keptBytesPerSample - (i > from ? memory[i]!.sharedWithPreviousBytesPerSample : 0);
  return bytes;
}
