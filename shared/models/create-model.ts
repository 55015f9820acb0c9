import type * as tf from '@tensorflow/tfjs';
import { loadModel } from './file-io.js';
import { buildZooModel, isZooModel, type ModelSpec } from './zoo.js';

/**
 * A model from the job's `model` field: a zoo name builds a fresh, seeded model; anything else is
 * the path of a TensorFlow.js LayersModel (`model.json` or its folder) whose weights are loaded.
 */
export async function createModel(nameOrPath: string, spec: ModelSpec): Promise<tf.LayersModel> {
  if (isZooModel(nameOrPath)) return buildZooModel(nameOrPath, spec);
  const model = await loadModel(nameOrPath);
  const inputShape = model.inputs[0]?.shape.slice(1);
  if (!inputShape || inputShape.join(',') !== spec.inputShape.join(',')) {
    throw new Error(`model ${nameOrPath} takes input shape [${inputShape?.join(', ')}], but the dataset provides [${spec.inputShape.join(', ')}]`);
  }
  const outputUnits = model.outputs[0]?.shape[1];
  if (outputUnits !== spec.numClasses) {
    throw new Error(`model ${nameOrPath} outputs ${outputUnits} classes, but the dataset has ${spec.numClasses}`);
  }
  return model;
}
