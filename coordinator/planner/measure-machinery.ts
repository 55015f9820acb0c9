import type * as tf from '@tensorflow/tfjs';
import { runLocalPipeline } from '../../peer/pipeline/local-pipeline.js';
import { microBatchSizes } from '../../peer/pipeline/microbatch.js';
import { outputKindOf } from '../../peer/trainer/loss.js';
import { createOptimizer } from '../../peer/trainer/optimizer.js';
import { trainStep } from '../../peer/trainer/train-step.js';
import type { Batch } from '../../shared/data/epoch-batches.js';
import { fitLinear, type LinearCost } from './linear-cost.js';
import type { ModelMeasurements } from './model-measurements.js';
import { accumulateWork, backwardWork, forwardWork, updateWork, wholeModel } from './stage-work.js';

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

function syntheticBatch(m: ModelMeasurements, batchSize: number): Batch {
  const valuesPerSample = m.inputShape.reduce((a, b) => a * b, 1);
  return {
    xs: Float32Array.from({ length: batchSize * valuesPerSample }, (_, i) => (i % 251) / 251),
    labels: Int32Array.from({ length: batchSize }, (_, i) => i % m.numClasses),
    size: batchSize,
  };
}

/**
 * What a training step spends beyond its layers' passes, loss and update (CPU ms), as a line in the
 * batch size: building the batch tensors, the gradient tape's bookkeeping, reading the loss. Measured
 * with the trainer's own `trainStep` (median of `steps`) at the two profiled batch sizes, minus the
 * per-layer work the planner predicts for the same batches. Trains `model`'s weights: give it a model
 * of its own.
 */
export async function measureStepOverhead(model: tf.LayersModel, m: ModelMeasurements, options: { steps?: number } = {}): Promise<LinearCost> {
  const steps = options.steps ?? 5;
  const optimizer = createOptimizer({ optimizer: m.optimizer, learningRate: 1e-3 });
  const ctx = { model, optimizer, inputShape: m.inputShape, numClasses: m.numClasses, outputKind: outputKindOf(model) };
  const range = wholeModel(m);
  const overheadAt = async (samples: number): Promise<{ samples: number; ms: number }> => {
    const batch = syntheticBatch(m, samples);
    await trainStep(ctx, batch);
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const started = cpuNowMs();
      await trainStep(ctx, batch);
      times.push(cpuNowMs() - started);
    }
    times.sort((a, b) => a - b);
    const predicted = forwardWork(m, range, samples) + backwardWork(m, range, samples) + updateWork(m, range);
    return { samples, ms: Math.max(0, times[Math.floor(times.length / 2)]! - predicted) };
  };
  try {
    const [small, large] = m.profiledBatchSizes;
    return fitLinear(await overheadAt(small), await overheadAt(large));
  } finally {
    optimizer.dispose();
  }
}

/**
 * What a pipeline stage spends per micro-batch beyond its layers' passes (CPU ms): slicing the
 * mini-batch, recording and replaying the deferred tape, reading the loss, the step's bookkeeping.
 * Measured by running the whole model as a one-stage pipeline in this process (the pipeline's own
 * code, `runLocalPipeline`) and subtracting the per-layer work the planner predicts for the same
 * steps. Trains `model`'s weights: give it a model of its own.
 */
export async function measureStageOverhead(model: tf.LayersModel, m: ModelMeasurements, options: { batchSize: number; microBatches?: number; steps?: number }): Promise<number> {
  const microBatches = Math.min(options.microBatches ?? 4, options.batchSize);
  const steps = options.steps ?? 3;
  const batch = syntheticBatch(m, options.batchSize);
  const run = (count: number) =>
    runLocalPipeline({
      model,
      balance: [m.layers.length],
      schedule: { microBatches, kind: 'gpipe' },
      batchSize: options.batchSize,
      steps: count,
      batches: { next: () => batch },
      createOptimizer: () => createOptimizer({ optimizer: m.optimizer, learningRate: 1e-3 }),
      loss: { numClasses: m.numClasses, outputKind: outputKindOf(model) },
    });
  await run(1);
  const started = cpuNowMs();
  await run(steps);
  const perStep = (cpuNowMs() - started) / steps;
  const range = wholeModel(m);
  const predicted =
    microBatchSizes(options.batchSize, microBatches).reduce((total, b) => total + forwardWork(m, range, b) + backwardWork(m, range, b), 0) +
    accumulateWork(m, range) * (microBatches - 1) +
    updateWork(m, range);
  return Math.max(0, perStep - predicted) / microBatches;
}
