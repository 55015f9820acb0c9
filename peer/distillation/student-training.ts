import * as tf from '@tensorflow/tfjs';
import type { StudentTraining } from '../../coordinator/distillation/distillation-messages.js';
import { denseTargets, type SoftTargetTable } from '../../coordinator/distillation/soft-target-table.js';
import { sliceOfBatch } from '../../coordinator/job/training-plan.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { transferSetBatches } from './distillation-data.js';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { RingGradientExchange } from '../session/ring-gradient-exchange.js';
import { yieldToEventLoop } from '../session/yield-to-event-loop.js';
import { distillationLoss } from './distillation-loss.js';

export interface StudentRun {
  model: tf.LayersModel;
  /** Owned by the caller: it survives a failed attempt, so the survivors keep Adam's moments. */
  optimizer: tf.Optimizer;
  training: StudentTraining;
  train: ImageDataset;
  inputShape: number[];
  /** Needed when alpha > 0. */
  table: SoftTargetTable | undefined;
  /** The ring of this attempt; undefined trains alone in this process (the in-process screening). */
  ring: RingCollective | undefined;
  /** Steps already in the weights (0: fresh); training continues at step startStep + 1. */
  startStep: number;
  /** Called after each step's update is in the weights: the state is now committed at `step`. */
  onCommitted?: (step: number) => void;
  onProgress: (step: number, totalSteps: number, loss: number) => void;
  isCancelled: () => boolean;
}

/** How often (steps) rank 0 reports progress: often enough for a live view, rarely enough to be free. */
const PROGRESS_EVERY = 10;

/**
 * Data-parallel training of a student, on soft targets (alpha > 0) or hard labels alone (alpha 0).
 * As in the cluster's training (`peer/session/epoch-run.ts`): step s trains on global batch s − 1
 * of an epoch order that depends only on (seed, epoch), each rank takes its contiguous slice, and
 * the ring sums the slice-weighted gradients, so every rank applies the global-batch mean and the
 * result does not depend on the number of peers — which is what lets survivors of a lost peer
 * continue from their last committed step on a smaller ring. The transfer set is the first
 * `samples` samples. The caller makes the replicas equal before (state broadcast).
 */
export async function trainStudent(run: StudentRun): Promise<{ trainSeconds: number; lastLoss: number }> {
  const { model, optimizer, training, train, inputShape, table, ring } = run;
  if (training.samples > train.count) throw new Error(`the transfer set asks for ${training.samples} samples, the training set has ${train.count}`);
  if (training.batchSize > training.samples) throw new Error(`batchSize ${training.batchSize} is larger than the ${training.samples} transfer samples`);
  if (training.alpha > 0 && !table) throw new Error('distilling (alpha > 0) needs the soft-target table');
  if (table && table.count < training.samples) throw new Error(`the soft targets cover ${table.count} samples, the transfer set has ${training.samples}`);
  const numClasses = train.numClasses;
  const rank = ring?.rank ?? 0;
  const worldSize = ring?.worldSize ?? 1;
  const started = performance.now();
  const { start: sliceStart, end: sliceEnd } = sliceOfBatch(training.batchSize, rank, worldSize);
  const exchange = ring && worldSize > 1 ? new RingGradientExchange(ring, model, (sliceEnd - sliceStart) / training.batchSize) : undefined;
  const batches = transferSetBatches(train, training, rank, worldSize, run.startStep);
  let lastLoss = Number.NaN;
  try {
    for (let step = run.startStep + 1; step <= training.steps; step++) {
      await yieldToEventLoop();
      if (run.isCancelled()) throw new Error('cancelled by the coordinator');
      const batch = await batches.next();
      if (batch.size !== sliceEnd - sliceStart) throw new Error(`step ${step}: the data pipeline gave ${batch.size} samples, this rank's slice of the global batch has ${sliceEnd - sliceStart}`);
      const samples = batch.sampleIndices;
      const probs = training.alpha > 0 ? denseTargets(table!, samples) : undefined;
      const xs = tf.tensor(batch.xs, [batch.size, ...inputShape]);
      const labels = tf.tensor1d(batch.labels, 'int32');
      const teacher = probs ? tf.tensor2d(probs, [batch.size, numClasses]) : undefined;
      const trainable = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
      let loss: tf.Scalar;
      let grads: tf.NamedTensorMap;
      try {
        ({ value: loss, grads } = optimizer.computeGradients(
          () => distillationLoss(model.apply(xs, { training: true }) as tf.Tensor, labels, teacher, { temperature: training.temperature, alpha: training.alpha, numClasses }),
          trainable,
        ));
      } finally {
        tf.dispose([xs, labels, ...(teacher ? [teacher] : [])]);
      }
      lastLoss = (await loss.data())[0]!;
      loss.dispose();
      // A failed exchange throws before the update: the state stays committed at step − 1.
      if (exchange) grads = await exchange.exchange(grads);
      optimizer.applyGradients(grads);
      tf.dispose(grads);
      run.onCommitted?.(step);
      if (rank === 0 && (step % PROGRESS_EVERY === 0 || step === training.steps)) run.onProgress(step, training.steps, lastLoss);
    }
  } finally {
    await batches.close();
  }
  return { trainSeconds: (performance.now() - started) / 1000, lastLoss };
}
