import * as tf from '@tensorflow/tfjs';
import { PipelineError } from '../errors.js';

type Layer = tf.layers.Layer;

/**
 * The layers of a model that is a plain chain (each layer feeds only the next), in order, without the
 * input layer. Only such a model has one tensor between any two layers at which to cut it into
 * pipeline stages; anything else is refused, naming the layer that branches or merges.
 */
export function sequentialLayers(model: tf.LayersModel): Layer[] {
  if (model instanceof tf.Sequential) return [...model.layers];
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw notSequential(model, `it has ${model.inputs.length} inputs and ${model.outputs.length} outputs`);
  }
  const layers = model.layers.filter((layer) => layer.getClassName() !== 'InputLayer');
  let previous: string | undefined = model.layers.find((layer) => layer.getClassName() === 'InputLayer')?.name;
  for (const [position, layer] of layers.entries()) {
    if (layer.inboundNodes.length !== 1) {
      throw notSequential(model, `layer '${layer.name}' is used ${layer.inboundNodes.length} times (shared weights)`);
    }
    const inbound = layer.inboundNodes[0]!.inboundLayers.map((l) => l.name);
    if (inbound.length !== 1 || inbound[0] !== previous) {
      throw notSequential(model, `layer '${layer.name}' takes its input from [${inbound.join(', ')}], not only from '${previous}'`);
    }
    const isLast = position === layers.length - 1;
    if (!isLast && layer.outboundNodes.length !== 1) {
      throw notSequential(model, `the output of layer '${layer.name}' feeds ${layer.outboundNodes.length} layers`);
    }
    previous = layer.name;
  }
  if (layers.length === 0) throw new PipelineError('usage', `model '${model.name}' has no layers to split`);
  return layers;
}

function notSequential(model: tf.LayersModel, why: string): PipelineError {
  return new PipelineError(
    'not-sequential',
    `model '${model.name}' cannot be split into pipeline stages: ${why}. Only sequential models (a chain of layers, one tensor between each pair) can be split.`,
  );
}
