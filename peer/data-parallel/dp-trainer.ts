import type * as tf from '@tensorflow/tfjs';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { trainingBatches } from '../../shared/data/training-batches.js';
import type { TrainingJob } from '../../shared/job/schema.js';
import { acceptsFlatGradients } from '../../shared/engine/flat-gradients.js';
import { FusedAdam } from '../../shared/engine/fused-adam.js';
import { createModel } from '../../shared/models/create-model.js';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { createReducer, type Compression } from '../compression/create-reducer.js';
import type { Evaluation } from '../trainer/evaluate.js';
import { outputKindOf } from '../trainer/loss.js';
import { createOptimizer } from '../trainer/optimizer.js';
import { trainStep, type FlatGradientExchange, type GradientExchange, type StepContext, type StepResult } from '../trainer/train-step.js';
import { evaluateDistributed } from './distributed-evaluate.js';
import { fusedLayout } from './fused-layout.js';
import { GradientFusion } from './gradient-fusion.js';
import { backwardBuckets } from './backward-buckets.js';
import { overlappedStep, type OverlappedExchange } from './overlapped-step.js';
import { createShardedAdamExchange } from './sharded-adam-exchange.js';
import { createFlatGradientExchange, createGradientExchange, type ExchangeReport, type GradientExchangeArgs } from './gradient-exchange.js';
import { broadcastWeights, ReplicaCheck, verifySameSettings } from './weight-sync.js';

/** Bucket size of the overlapped backward pass: 1 MiB measured as fast as one fused buffer, 0.5 MiB slower (docs/benchmarks.md, time to accuracy). */
export const DEFAULT_BACKWARD_BUCKET_BYTES = 1024 * 1024;

export interface DataParallelOptions {
  /** The ring of all replicas; a ring of one is plain single-process training through the same code. */
  ring: RingCollective;
  data: { train: ImageDataset; test: ImageDataset };
  compression?: Compression;
  powerSgdRank?: number;
  /**
   * Bucket size of the gradient exchange. With overlapBackward, each bucket is reduced as soon as its
   * gradients are computed, last layers first: default DEFAULT_BACKWARD_BUCKET_BYTES. Otherwise
   * buckets are reduced as soon as they are copied out after the backward pass: default one fused buffer.
   */
  bucketBytes?: number;
  /**
   * Overlap the all-reduce with the backward pass, DDP-style (overlapped-step.ts). Default false:
   * on this 2-core machine over loopback it measured no faster (docs/benchmarks.md).
   */
  overlapBackward?: boolean;
  /**
   * With FusedAdam, no compression and no bucket size: each rank applies Adam to the segment it
   * finishes reducing and the all-gather carries weights (sharded-adam-exchange.ts). Default false:
   * it saves ≈ 0.2 ms of the mlp's step here, within the noise (docs/benchmarks.md).
   */
  shardedUpdate?: boolean;
  /** Check every K steps that all replicas hold the same weights (0: never). Default 50. */
  hashEvery?: number;
  /** Evaluate on the test set every K steps (0: only at the end). Evaluation time is not training time. */
  evalEvery?: number;
  /** Stop as soon as an evaluation reaches this test accuracy. */
  targetAccuracy?: number;
  /** Evaluate on the test set at the end (default true). */
  finalEvaluation?: boolean;
  /** Hand the trained model back (the caller disposes it) instead of disposing it. */
  keepModel?: boolean;
  onStep?: (report: DataParallelStepReport) => void;
  onEval?: (report: { step: number; trainSeconds: number; evaluation: Evaluation }) => void;
}

/** Where one step's time went on this rank. */
export interface DataParallelStepReport {
  step: number;
  totalSteps: number;
  epoch: number;
  /** This rank's loss on its slice of the global batch. */
  loss: number;
  localBatch: number;
  /** Forward, backward and optimizer update. */
  computeMs: number;
  /**
   * Gradient exchange time this rank did not compute: all of the exchange without the overlapped
   * backward pass; with it, the turns of the event loop between buckets and the wait after the last.
   */
  commMs: number;
  /** Waiting for this rank's slice of the next batch. */
  dataWaitMs: number;
  wireBytes: number;
  fp32Bytes: number;
}

export interface DataParallelResult {
  steps: number;
  /** Training wall time, evaluations excluded. */
  trainSeconds: number;
  /** Absent when finalEvaluation is false and no evaluation ran. */
  test?: Evaluation;
  /** Training seconds at which the target accuracy was first measured, if it was. */
  secondsToTarget?: number;
  stepsToTarget?: number;
  weightsHash: string;
  /** Hash of the weights every replica started from (after rank 0's were broadcast). */
  initialWeightsHash: string;
  parameters: number;
  /** With keepModel. */
  model?: tf.LayersModel;
  totals: { computeMs: number; commMs: number; dataWaitMs: number; wireBytes: number; fp32Bytes: number };
}

/**
 * Data-parallel training: every replica starts from rank 0's weights, reads only its slice of each
 * global batch (the data pipeline's split), and applies the gradient of the whole global batch,
 * summed over the ring. So N replicas follow the trajectory of one process training on the global
 * batch, and stay bit-identical (checked every `hashEvery` steps).
 */
export async function trainDataParallel(job: TrainingJob, options: DataParallelOptions): Promise<DataParallelResult> {
  const { ring, data } = options;
  const inputShape = [data.train.height, data.train.width, data.train.channels];
  const model = await createModel(job.model, { inputShape, numClasses: data.train.numClasses, seed: job.seed });
  // Adam as one fused SIMD pass: the same bits as tf.train.adam, less fixed cost per step (shared/engine/fused-adam.ts).
  const optimizer = job.optimizer === 'adam' ? new FusedAdam(job.learningRate) : createOptimizer(job);
  const ctx: StepContext = { model, optimizer, inputShape, numClasses: data.train.numClasses, outputKind: outputKindOf(model) };
  const evalOptions = { batchSize: job.evalBatchSize, outputKind: ctx.outputKind, inputShape };
  await broadcastWeights(model, ring);

  const variables = model.trainableWeights.map((w) => ({ name: (w.read() as tf.Variable).name, shape: w.read().shape }));
  // Gradients come keyed by the underlying variables' names (see trainStep).
  const layout = fusedLayout(variables, options.bucketBytes);
  const fusion = new GradientFusion(layout);
  const reducer = createReducer(options.compression ?? 'none', layout, { seed: job.seed, ...(options.powerSgdRank ? { powerSgdRank: options.powerSgdRank } : {}) });
  const overlapped: OverlappedExchange | undefined =
    ring.worldSize > 1 && reducer.bucketed && acceptsFlatGradients(optimizer) && (options.overlapBackward ?? false)
      ? { ring, fusion, reducer, buckets: backwardBuckets(layout, options.bucketBytes ?? DEFAULT_BACKWARD_BUCKET_BYTES) }
      : undefined;
  let share = 1;
  let exchangeReport: ExchangeReport = { ms: 0, wireBytes: 0, fp32Bytes: 0 };
  // The share scales the loss (trainStep's lossScale), so the gradients come out weighted already.
  const exchangeArgs: GradientExchangeArgs = { ring, fusion, reducer, share: () => share, weighted: true, onReport: (r) => (exchangeReport = r) };
  // A ring of one with nothing to compress has nothing to exchange: plain local training, no overhead.
  // FusedAdam takes the summed gradients straight from the fused buffer; other optimizers get tensors.
  // Asked for, uncompressed, with FusedAdam and one bucket: Adam inside the all-reduce (sharded-adam-exchange.ts).
  const sharded = ring.worldSize > 1 && reducer.name === 'none' && optimizer instanceof FusedAdam && options.bucketBytes === undefined && (options.shardedUpdate ?? false);
  const exchange: GradientExchange | FlatGradientExchange | undefined =
    ring.worldSize === 1 && reducer.name === 'none'
      ? undefined
      : sharded
        ? createShardedAdamExchange({ ring, fusion, optimizer, onReport: (r) => (exchangeReport = r) })
        : acceptsFlatGradients(optimizer)
          ? { flat: createFlatGradientExchange(exchangeArgs) }
          : createGradientExchange(exchangeArgs);
  // With the sharded update the weight hashes cannot tell replicas apart: compare their settings.
  if (sharded) await verifySameSettings(ring, { learningRate: optimizer.learningRate, beta1: optimizer.beta1, beta2: optimizer.beta2, batchSize: job.batchSize });
  const replicas = new ReplicaCheck(ring);
  // Also proves the broadcast worked: every replica starts from the same bits.
  const initialWeightsHash = await replicas.verify(model, 0);
  const hashEvery = options.hashEvery ?? 50;

  const batches = trainingBatches(data.train, { batchSize: job.batchSize, seed: job.seed, split: { rank: ring.rank, world: ring.worldSize }, name: 'mnist:train' }).iterate();
  const epochSteps = Math.round(job.epochs * batches.batchesPerEpoch);
  const totalSteps = job.maxSteps > 0 ? Math.min(job.maxSteps, epochSteps) : epochSteps;
  const totals = { computeMs: 0, commMs: 0, dataWaitMs: 0, wireBytes: 0, fp32Bytes: 0 };
  let trainMs = 0;
  let steps = 0;
  let reached: { seconds: number; step: number } | undefined;
  let lastEval: Evaluation | undefined;
  try {
    while (steps < totalSteps && !reached) {
      const stepStart = performance.now();
      const batch = await batches.next();
      const dataWaitMs = performance.now() - stepStart;
      share = batch.size / job.batchSize;
      let result: StepResult;
      if (overlapped) {
        const step = await overlappedStep(ctx as StepContext & { optimizer: FusedAdam }, batch, overlapped, share);
        exchangeReport = { ms: step.exchangeMs, ...step.stats };
        result = step;
      } else {
        result = await trainStep(ctx, batch, exchange, { lossScale: share });
      }
      trainMs += performance.now() - stepStart;
      steps++;
      const report: DataParallelStepReport = {
        step: steps,
        totalSteps,
        epoch: batch.epoch,
        loss: result.loss,
        localBatch: batch.size,
        computeMs: result.computeMs,
        commMs: result.exchangeMs,
        dataWaitMs,
        wireBytes: exchangeReport.wireBytes,
        fp32Bytes: exchangeReport.fp32Bytes,
      };
      totals.computeMs += report.computeMs;
      totals.commMs += report.commMs;
      totals.dataWaitMs += report.dataWaitMs;
      totals.wireBytes += report.wireBytes;
      totals.fp32Bytes += report.fp32Bytes;
      options.onStep?.(report);
      if (hashEvery > 0 && steps % hashEvery === 0) await replicas.verify(model, steps);
      if (options.evalEvery && steps % options.evalEvery === 0 && steps < totalSteps) {
        lastEval = await evaluateDistributed(model, data.test, ring, evalOptions);
        options.onEval?.({ step: steps, trainSeconds: trainMs / 1000, evaluation: lastEval });
        if (options.targetAccuracy !== undefined && lastEval.accuracy >= options.targetAccuracy) reached = { seconds: trainMs / 1000, step: steps };
      }
    }
  } finally {
    await batches.close();
  }
  const weightsHash = await replicas.verify(model, steps);
  let test = reached ? lastEval : undefined;
  if (!test && options.finalEvaluation !== false) {
    test = await evaluateDistributed(model, data.test, ring, evalOptions);
    if (!reached && options.targetAccuracy !== undefined && test.accuracy >= options.targetAccuracy) reached = { seconds: trainMs / 1000, step: steps };
    options.onEval?.({ step: steps, trainSeconds: trainMs / 1000, evaluation: test });
  }
  const parameters = model.countParams();
  if (!options.keepModel) model.dispose();
  ctx.optimizer.dispose();
  return {
    steps,
    trainSeconds: trainMs / 1000,
    ...(test ? { test } : {}),
    ...(reached ? { secondsToTarget: reached.seconds, stepsToTarget: reached.step } : {}),
    weightsHash,
    initialWeightsHash,
    parameters,
    totals,
    ...(options.keepModel ? { model } : {}),
  };
}
