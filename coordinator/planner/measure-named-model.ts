import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../shared/models/create-model.js';
import { measureModel } from './measure-model.js';
import type { ModelMeasurements } from './model-measurements.js';
import type { OptimizerName } from './optimizer-state.js';

export interface MeasureNamedModelOptions {
  /** Zoo name (`mlp`, `cnn`) or the path of a model.json (or its folder). */
  model: string;
  batchSize: number;
  optimizer: OptimizerName;
  repeats?: number;
  /** The data's sample shape and classes; default MNIST's. */
  inputShape?: number[];
  numClasses?: number;
}

/**
 * Builds (or loads) the model on the current tensor backend, measures it, and frees it: what the
 * `plan` command and the dashboard call once per model. Call after the backend is selected.
 */
export async function measureNamedModel(options: MeasureNamedModelOptions): Promise<ModelMeasurements> {
  const runtimeBytes = process.memoryUsage().rss;
  const model = await createModel(options.model, { inputShape: options.inputShape ?? [28, 28, 1], numClasses: options.numClasses ?? 10, seed: 42 });
  try {
    return measureModel(model, {
      name: options.model,
      backend: tf.getBackend(),
      optimizer: options.optimizer,
      batchSize: options.batchSize,
      runtimeBytes,
      ...(options.repeats !== undefined ? { repeats: options.repeats } : {}),
    });
  } finally {
    model.dispose();
  }
}
