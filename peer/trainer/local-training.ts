
import { loadMnist, type ImageDataset } from '../../shared/data/mnist.js';
import { trainingBatches } from '../../shared/data/training-batches.js';
import type { TrainingJob } from '../../shared/job/schema.js';
import { createModel } from '../../shared/models/create-model.js';
import { saveModel } from '../../shared/models/file-io.js';
import { evaluate, type Evaluation } from './evaluate.js';
import { outputKindOf } from './loss.js';
import { createOptimizer } from './optimizer.js';
import { trainStep, type StepContext } from './train-step.js';

export interface StepReport {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  samplesPerSecond: number;
  computeMs: number;
  dataWaitMs: number;
}

export interface LocalTrainingResult {
  steps: number;
  samples: number;
  trainSeconds: number;
  samplesPerSecond: number;
  test: Evaluation;
  savedTo?: string;
  parameters: number;
}

export interface LocalTrainingOptions {
  saveDir?: string;
  onStep?: (report: StepReport) => void;
  /** Preloaded data (tests and benchmarks reuse it across runs). */
  data?: { train: ImageDataset; test: ImageDataset };
}

/** Trains a job in this process on the tensor backend already selected, evaluates it and saves it. */
export async function trainLocally(job: TrainingJob, options: LocalTrainingOptions = {}): Promise<LocalTrainingResult> {
  const data = options.data ?? { train: await loadMnist('train'), test: await loadMnist('test') };
  const inputShape = [data.train.height, data.train.width, data.train.channels];
  const numClasses = data.train.numClasses;
  const model = await createModel(job.model, { inputShape, numClasses, seed: job.seed });
  const ctx: StepContext = { model, optimizer: createOptimizer(job), inputShape, numClasses, outputKind: outputKindOf(model) };

  const batches = trainingBatches(data.train, { batchSize: job.batchSize, seed: job.seed, name: 'mnist:train' }).iterate();
  const epochSteps = Math.round(job.epochs * batches.batchesPerEpoch);
  const totalSteps = job.maxSteps > 0 ? Math.min(job.maxSteps, epochSteps) : epochSteps;

  const started = performance.now();
  try {
    for (let step = 1; step <= totalSteps; step++) {
      const stepStart = performance.now();
      const batch = await batches.next();
      const dataWaitMs = performance.now() - stepStart;
      const result = await trainStep(ctx, batch);
      const stepMs = performance.now() - stepStart;
      options.onStep?.({ step, totalSteps, epoch: batch.epoch, loss: result.loss, samplesPerSecond: (batch.size * 1000) / stepMs, computeMs: result.computeMs, dataWaitMs });
    }
  } finally {
    await batches.close();
  }
  const trainSeconds = (performance.now() - started) / 1000;

  const test = await evaluate(model, data.test, { batchSize: job.evalBatchSize, outputKind: ctx.outputKind, inputShape });
  const savedTo = options.saveDir ? await saveModel(model, options.saveDir) : undefined;
  const parameters = model.countParams();
  model.dispose();
  ctx.optimizer.dispose();
  return {
    steps: totalSteps,
    samples: totalSteps * job.batchSize,
    trainSeconds,
    samplesPerSecond: (totalSteps * job.batchSize) / trainSeconds,
    test,
    ...(savedTo ? { savedTo } : {}),
    parameters,
  };
}

