import type * as tf from '@tensorflow/tfjs';
import { PipelineError } from '../errors.js';
import { checkBalance, type Balance } from './balance.js';
import { sequentialLayers } from './sequential-layers.js';
import { StageModule } from './stage-module.js';

/** Splits a sequential model into stages of `balance[i]` consecutive layers each. */
export function partitionModel(model: tf.LayersModel, balance: Balance): StageModule[] {
  const layers = sequentialLayers(model);
  checkBalance(balance, layers.length);
  const stages: StageModule[] = [];
  let first = 0;
  let inputShape = perSample(model.inputs[0]!.shape);
  for (const [index, count] of balance.entries()) {
    const stageLayers = layers.slice(first, first + count);
    const outputShape = perSample(outputShapeOf(stageLayers[count - 1]!));
    stages.push(new StageModule(index, stageLayers, first, inputShape, outputShape));
    inputShape = outputShape;
    first += count;
  }
  return stages;
}

/**
 * Only stage `index` of the model: the other stages' weights are freed, so a peer holds the memory of
 * its own stage only (after building the whole model once).
 */
export function takeStage(model: tf.LayersModel, balance: Balance, index: number): StageModule {
  const stages = partitionModel(model, balance);
  const stage = stages[index];
  if (!stage) throw new PipelineError('usage', `stage index ${index} is outside a pipeline of ${stages.length} stages`);
  for (const other of stages) {
    if (other !== stage) for (const layer of other.layers) for (const weight of layer.weights) weight.dispose();
  }
  return stage;
}

function outputShapeOf(layer: tf.layers.Layer): tf.Shape {
  const shape = layer.outputShape;
  if (Array.isArray(shape[0])) throw new PipelineError('not-sequential', `layer '${layer.name}' has several outputs`);
  return shape as tf.Shape;
}

function perSample(shape: tf.Shape): number[] {
  const rest = shape.slice(1);
  if (rest.some((d) => d === null)) throw new PipelineError('usage', `a pipeline needs fixed sample shapes, got [${shape.join(', ')}]`);
  return rest as number[];
}
