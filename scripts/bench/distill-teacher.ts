/**
 * The distillation benchmark's teacher, trained in this process the way `npm run train` trains
 * (same pipeline, step and optimizer) but only on the training images before the validation split,
 * so settings can be screened on validation images no model has seen.
 */
import type * as tf from '@tensorflow/tfjs';
import { TEACHER_RECIPE } from '../../coordinator/distillation/round-defaults.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { trainingBatches } from '../../shared/data/training-batches.js';
import { buildZooModel } from '../../shared/models/zoo.js';
import { outputKindOf } from '../../peer/trainer/loss.js';
import { createOptimizer } from '../../peer/trainer/optimizer.js';
import { trainStep, type StepContext } from '../../peer/trainer/train-step.js';

export type TeacherRecipe = { -readonly [K in keyof typeof TEACHER_RECIPE]: (typeof TEACHER_RECIPE)[K] extends number ? number : (typeof TEACHER_RECIPE)[K] };

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
