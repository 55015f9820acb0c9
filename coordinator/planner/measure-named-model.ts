import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../shared/models/create-model.js';
import { measureModel } from './measure-model.js';
import { measureBatchAssembly } from './measure-batch-assembly.js';
import { measureCrossing } from './measure-crossing.js';
import { measureStageOverhead, measureStepOverhead } from './measure-machinery.js';
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
 * Builds (or loads) the model on the current tensor backend, measures it (with the trainer's and
 * the pipeline machinery's overheads, which train this copy), and frees it: what the `plan` command and the
 * dashboard call once per model. Call after the backend is selected.
 */
export async function measureNamedModel(options: MeasureNamedModelOptions): Promise<ModelMeasurements> {
  const runtimeBytes = process.memoryUsage().rss;
  const model = await createModel(options.model, { inputShape: options.inputShape ?? [28, 28, 1], numClasses: options.numClasses ?? 10, seed: 42 });
  try {
    const measurements = measureModel(model, {
      name: options.model,
      backend: tf.getBackend(),
      optimizer: options.optimizer,
      batchSize: options.batchSize,
      runtimeBytes,
      ...(options.repeats !== undefined ? { repeats: options.repeats } : {}),
    });
    // The model is ours to train: the trainer's and the pipeline's own costs, measured on it.
    const stepOverhead = await measureStepOverhead(model, measurements);
    const stageOverheadMsPerMicroBatch = await measureStageOverhead(model, measurements, { batchSize: options.batchSize });
    // A failed crossing measurement (a link refused, a port taken) costs a pipeline prediction a
    // little accuracy, not the plan: the model is then planned without it.
    const crossing = await measureCrossing().catch(() => undefined);
    const batchAssembly = measureBatchAssembly({ inputShape: measurements.inputShape, numClasses: measurements.numClasses, batchSizes: measurements.profiledBatchSizes });
    return { ...measurements, stepOverhead, stageOverheadMsPerMicroBatch, batchAssembly, ...(crossing ? { crossing } : {}) };
  } finally {
    model.dispose();
  }
}
