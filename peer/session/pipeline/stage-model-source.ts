import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import type { ClusterJob } from '../../../coordinator/job/cluster-job.js';
import { createModel } from '../../../shared/models/create-model.js';
import { isZooModel } from '../../../shared/models/zoo.js';
import { ModelBlueprint } from '../../pipeline/partition/model-blueprint.js';
import { takeStage } from '../../pipeline/partition/partition-model.js';
import { sequentialLayers } from '../../pipeline/partition/sequential-layers.js';
import type { StageModule } from '../../pipeline/partition/stage-module.js';
import type { OutputKind } from '../../trainer/loss.js';
import type { DataShape } from '../training-state.js';

/**
 * Where a pipeline peer's stage comes from, without the peer holding the whole model: the job's
 * model described once per job (cheap: no weights), its stage built on demand.
 */
export interface StageModelSource {
  /** Builds stage `index` of `balance` with its initial (seeded or file) weights; only its layers hold weights. */
  build(balance: number[], index: number): Promise<StageModule>;
  /** The whole model's topology (model.json's `modelTopology`), for the joined checkpoint. */
  topology: object;
  /** Compared by the coordinator across peers (with the data's fingerprint): same model, same split. */
  layout: { hash: string; elements: number };
  outputKind: OutputKind;
}

/** The job's model as a stage source; a model that cannot take the data says so in the job's terms. */
export async function stageModelSource(job: ClusterJob, data: DataShape & { name: string }): Promise<StageModelSource> {
  const spec = { inputShape: data.inputShape, numClasses: data.numClasses, seed: job.seed };
  try {
    return isZooModel(job.model) ? zooSource(ModelBlueprint.forZoo(job.model, spec), data) : await fileSource(job.model, spec);
  } catch (error) {
    throw new Error(`model "${job.model}" cannot train on ${data.name} (samples of shape [${data.inputShape.join(', ')}], ${data.numClasses} classes) as a pipeline: ${(error as Error).message}`, { cause: error });
  }
}

/** Zoo models: every stage builds only its layers, seeded per layer (equal to the whole seeded model's). */
function zooSource(blueprint: ModelBlueprint, data: DataShape): StageModelSource {
  const output = blueprint.shapes[blueprint.layerCount]!;
  if (output.join(',') !== String(data.numClasses)) throw new Error(`the model outputs [${output.join(', ')}], the data has ${data.numClasses} classes`);
  return {
    build: async (balance, index) => blueprint.buildStage(balance, index),
    topology: blueprint.topology(),
    // Elements: the layer count, as no pipeline peer holds (or counts) the whole state.
    layout: { hash: blueprint.layoutHash(), elements: blueprint.layerCount },
    outputKind: blueprint.outputActivation === 'softmax' ? 'probabilities' : 'logits',
  };
}

/**
 * A model file's weights are in one weights.bin: the stage loads the model, keeps its layers and
 * frees the others' weights (it holds its stage only; the load itself peaks at the whole model).
 */
async function fileSource(location: string, spec: { inputShape: number[]; numClasses: number; seed: number }): Promise<StageModelSource> {
  const probe = await createModel(location, spec);
  let topology: object;
  let layerCount: number;
  let outputKind: OutputKind;
  try {
    topology = probe.toJSON(undefined, false) as object;
    layerCount = sequentialLayers(probe).length;
    outputKind = lastActivation(probe) === 'softmax' ? 'probabilities' : 'logits';
  } finally {
    probe.dispose();
  }
  return {
    build: async (balance, index) => takeStage(await createModel(location, spec), balance, index),
    topology,
    layout: { hash: createHash('sha256').update(JSON.stringify(topology)).digest('hex').slice(0, 32), elements: layerCount },
    outputKind,
  };
}

function lastActivation(model: tf.LayersModel): string | undefined {
  return (model.layers[model.layers.length - 1]?.getConfig() as { activation?: string } | undefined)?.activation;
}
