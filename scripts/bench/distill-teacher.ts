/**
 * The distillation benchmark's teacher, trained in this process the way `npm run train` trains
 * (same pipeline, step and optimizer) but only on the training images before the validation split,
 * so settings can be screened on validation images no model has seen.
 */
import * as tf from '@tensorflow/tfjs';
import { TEACHER_RECIPE } from '../../coordinator/distillation/round-defaults.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { trainingBatches } from '../../shared/data/training-batches.js';
import { buildZooModel } from '../../shared/models/zoo.js';
import { outputKindOf } from '../../peer/trainer/loss.js';
import { createOptimizer } from '../../peer/trainer/optimizer.js';
import { trainStep, type StepContext } from '../../peer/trainer/train-step.js';

/** How the teacher is trained (TEACHER_RECIPE, or the benchmark's flags over it). */
export interface TeacherRecipe {
  model: string;
  epochs: number;
  seed: number;
  batchSize: number;
  optimizer: (typeof TEACHER_RECIPE)['optimizer'];
  learningRate: number;
  /** Trains on the first N training images. */
  trainImages: number;
  ensembleEpochs: readonly number[];
}

/** Images [start, end) of a dataset, sharing its memory. */
export function sliceImages(data: ImageDataset, start: number, end: number): ImageDataset {
  if (!(start >= 0 && end <= data.count && start < end)) throw new Error(`images [${start}, ${end}) are not within the ${data.count} of the dataset`);
  const pixels = data.height * data.width * data.channels;
  return { ...data, images: data.images.subarray(start * pixels, end * pixels), labels: data.labels.subarray(start, end), count: end - start };
}

/**
 * Trains the teacher on the first `recipe.trainImages` images; `onEpochEnd` sees the model after
 * each whole epoch (the screening scores every epoch's teacher from one run). The caller disposes
 * the returned model.
 */
export async function trainTeacher(
  train: ImageDataset,
  recipe: TeacherRecipe,
  onEpochEnd?: (epoch: number, model: tf.LayersModel) => Promise<void>,
  onProgress?: (step: number, totalSteps: number) => void,
): Promise<tf.LayersModel> {
  const data = sliceImages(train, 0, recipe.trainImages);
  const inputShape = [data.height, data.width, data.channels];
  const model = buildZooModel(recipe.model, { inputShape, numClasses: data.numClasses, seed: recipe.seed });
  const optimizer = createOptimizer({ optimizer: recipe.optimizer, learningRate: recipe.learningRate });
  const ctx: StepContext = { model, optimizer, inputShape, numClasses: data.numClasses, outputKind: outputKindOf(model) };
  const batches = trainingBatches(data, { batchSize: recipe.batchSize, seed: recipe.seed, name: 'mnist:teacher' }).iterate();
  const perEpoch = batches.batchesPerEpoch;
  const totalSteps = Math.round(recipe.epochs * perEpoch);
  try {
    for (let step = 1; step <= totalSteps; step++) {
      await trainStep(ctx, await batches.next());
      if (step % 100 === 0) onProgress?.(step, totalSteps);
      if (step % perEpoch === 0) await onEpochEnd?.(step / perEpoch, model);
    }
  } finally {
    await batches.close();
    optimizer.dispose();
  }
  return model;
}

/**
 * One LayersModel whose logits are the mean of several checkpoints' logits (an ensemble of
 * checkpoints of one MLP: same layers, one weight set each, as `model.getWeights()` gives them).
 * Dropout is left out: a teacher only predicts. Flatten and dense layers only (the zoo's MLPs).
 */
export function averagedTeacher(template: tf.LayersModel, weightSets: tf.Tensor[][]): tf.LayersModel {
  const input = tf.input({ shape: template.inputs[0]!.shape.slice(1) as number[] });
  const branches: tf.SymbolicTensor[] = [];
  for (const weights of weightSets) {
    let x: tf.SymbolicTensor = input;
    let next = 0;
    for (const layer of template.layers) {
      const name = layer.getClassName();
      if (name === 'Dropout') continue;
      if (name === 'Flatten') {
        x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
      } else if (name === 'Dense') {
        const config = layer.getConfig() as { units: number; activation: string; useBias: boolean };
        const dense = tf.layers.dense({ units: config.units, activation: config.activation as 'relu' | 'linear', useBias: config.useBias });
        x = dense.apply(x) as tf.SymbolicTensor;
        const count = config.useBias ? 2 : 1;
        dense.setWeights(weights.slice(next, next + count));
        next += count;
      } else {
        throw new Error(`averagedTeacher: layer ${layer.name} (${name}) is not supported; only Flatten, Dense and Dropout`);
      }
    }
    if (next !== weights.length) throw new Error(`averagedTeacher: the model has ${next} weights, a checkpoint has ${weights.length}`);
    branches.push(x);
  }
  const output = branches.length === 1 ? branches[0]! : (tf.layers.average().apply(branches) as tf.SymbolicTensor);
  return tf.model({ inputs: input, outputs: output, name: 'checkpoint_ensemble' });
}

/**
 * The benchmark's teacher as one model: the trained MLP, or — when the recipe names several
 * epochs in `ensembleEpochs` — the mean of its checkpoints after those epochs (averagedTeacher).
 */
export async function buildTeacher(train: ImageDataset, recipe: TeacherRecipe, onProgress?: (step: number, totalSteps: number) => void): Promise<tf.LayersModel> {
  const epochs: number[] = [...recipe.ensembleEpochs];
  if (epochs.length <= 1) return trainTeacher(train, recipe, undefined, onProgress);
  const snapshots = new Map<number, tf.Tensor[]>();
  const model = await trainTeacher(train, { ...recipe, epochs: Math.max(...epochs) }, async (epoch, m) => {
    if (epochs.includes(epoch)) snapshots.set(epoch, m.getWeights().map((w) => w.clone()));
  }, onProgress);
  try {
    return averagedTeacher(model, epochs.map((epoch) => snapshots.get(epoch)!));
  } finally {
    model.dispose();
    for (const weights of snapshots.values()) tf.dispose(weights);
  }
}
