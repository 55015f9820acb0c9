import * as tf from '@tensorflow/tfjs';
import { openJobData } from '../../shared/data/open-dataset.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { createModel } from '../../shared/models/create-model.js';
import { layerFlops } from '../planner/layer-flops.js';
import { balanceByCost, balanceByParameters, checkBalance } from '../../peer/pipeline/partition/balance.js';
import { planBalance } from '../../peer/pipeline/partition/plan-balance.js';
import { sequentialLayers } from '../../peer/pipeline/partition/sequential-layers.js';
import type { ClusterJob } from './cluster-job.js';
import { pipelineOf } from './pipeline-section.js';

export interface PipelinePlan {
  stages: number;
  /** Layers per stage. */
  balance: number[];
  rule: 'flops' | 'parameters' | 'time' | 'explicit';
  /** Per stage: the first layer's index and the layers' names (for the log and the dashboard). */
  layers: { first: number; names: string[] }[];
}

const MNIST_SHAPE = { inputShape: [28, 28, 1], numClasses: 10 };

/**
 * Decides, once, on the coordinator, which layers each stage runs: every stage must agree, and a
 * balance by measured time differs from machine to machine, so the peers are told rather than left
 * to work it out. Builds the model once (for time: on the job's backend, on this machine).
 * Errors name the field to change.
 */
export async function planPipeline(job: ClusterJob): Promise<PipelinePlan> {
  const settings = pipelineOf(job);
  const shape = await dataShape(job);
  const rule = settings.balance;
  if (rule === 'time') {
    await selectBackend(job.backend === 'auto' ? {} : { force: job.backend });
  } else if (tf.getBackend() !== 'cpu') {
    await tf.setBackend('cpu');
  }
  const model = await createModel(job.model, { ...shape, seed: job.seed });
  try {
    let layers: tf.layers.Layer[];
    try {
      layers = sequentialLayers(model);
    } catch (error) {
      throw new Error(`model: ${(error as Error).message}`, { cause: error });
    }
    const { stages } = settings;
    if (stages > layers.length) {
      throw new Error(`pipeline.stages: model ${job.model} has ${layers.length} layers (${layers.map((l) => l.name).join(', ')}); it cannot be cut into ${stages} stages of at least one layer each, got ${stages}`);
    }
    let balance: number[];
    let used: PipelinePlan['rule'];
    if (Array.isArray(rule)) {
      try {
        checkBalance(rule, layers.length);
      } catch (error) {
        throw new Error(`pipeline.balance: ${(error as Error).message}`, { cause: error });
      }
      balance = [...rule];
      used = 'explicit';
    } else if (rule === 'flops') {
      balance = balanceByCost(
        layers.map((layer) => {
          const flops = layerFlops(layer);
          return flops ? flops.forward + flops.backwardWeights + flops.backwardInput : 0;
        }),
        stages,
      );
      used = 'flops';
    } else if (rule === 'parameters') {
      balance = balanceByParameters(layers.map((layer) => layer.countParams()), stages);
      used = 'parameters';
    } else {
      balance = planBalance(model, stages, 'time').balance;
      used = 'time';
    }
    let first = 0;
    const described = balance.map((count) => {
      const entry = { first, names: layers.slice(first, first + count).map((l) => l.name) };
      first += count;
      return entry;
    });
    return { stages, balance, rule: used, layers: described };
  } finally {
    model.dispose();
  }
}

/** The shape the model must take: MNIST's is known; other datasets are opened here to read it. */
async function dataShape(job: ClusterJob): Promise<{ inputShape: number[]; numClasses: number }> {
  const spec = job.dataset as unknown;
  if (spec === 'mnist' || (typeof spec === 'object' && spec !== null && (spec as { kind?: unknown }).kind === 'mnist')) return MNIST_SHAPE;
  try {
    const data = await openJobData(job.dataset);
    return { inputShape: data.inputShape, numClasses: data.numClasses };
  } catch (error) {
    throw new Error(
      `dataset: the coordinator cuts the model into stages and needs the samples' shape, but cannot open the dataset on this machine (${(error as Error).message}); give it the same dataset files as the peers`,
      { cause: error },
    );
  }
}
