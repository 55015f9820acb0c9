import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../shared/data/epoch-batches.js';
import { createLogger } from '../../shared/log/logger.js';
import { PipelineError } from './errors.js';
import type { StageNeighbours } from './links/neighbour-link.js';
import type { StageModule } from './partition/stage-module.js';
import type { GradientAverager } from './replicas/replica-gradients.js';
import { peakInFlight, stageSchedule, type ScheduleKind } from './schedule/schedule.js';
import { StageBuffers } from './stage-buffers.js';
import { StageCompute, type LossSpec } from './stage-compute.js';
import { runStageStep } from './stage-step.js';
import { nowUs, type Timeline } from './timeline/timeline.js';
import { prepackDenseWeights } from './weight-packing.js';

const log = createLogger('pipeline');

export interface PipelineScheduleOptions {
  /** M: micro-batches per mini-batch. */
  microBatches: number;
  /** 'gpipe' (all forwards, then all backwards; default) or '1f1b' (caps activations in flight). */
  kind?: ScheduleKind;
  /** Keep only each micro-batch's stage input and recompute the forward pass during backward. */
  rematerialize?: boolean;
  /** Dense weights' gradients once per mini-batch, at the update (default true; see StageCompute). */
  deferWeightGradients?: boolean;
  /**
   * The first stage multiplies its deferred weight-gradient factors during its backward passes, every
   * `settleRows` rows (default: never; one product per weight over the whole mini-batch at the
   * update). See stage-step.ts.
   */
  settleRows?: number;
  /**
   * The first stage multiplies its deferred weight gradients while it waits for an output gradient
   * that has not arrived (default true; the rest at the update; see stage-step.ts).
   */
  settleWhileWaiting?: boolean;
}

/** Where the first stage gets its mini-batches (EpochBatches and the data pipeline's iterator fit). */
export interface BatchSource {
  next(): Batch | Promise<Batch>;
}

export interface PipelineStageOptions {
  /** This stage's layers (see partitionModel / takeStage); `stage.index` is its position. */
  stage: StageModule;
  /** K: stages in the pipeline. */
  stages: number;
  /** Links to the previous and next stage (none before the first, none after the last). */
  neighbours: StageNeighbours;
  schedule: PipelineScheduleOptions;
  /** Samples per mini-batch (per replica). */
  batchSize: number;
  /** Updates this stage's variables once per mini-batch. */
  optimizer: tf.Optimizer;
  steps: number;
  /**
   * Number of the first mini-batch (default 0): tags every tensor and timeline span, so a pipeline
   * resumed at step s numbers its steps as an uninterrupted run would (and a stale frame is caught).
   */
  firstStep?: number;
  /** First stage only. */
  batches?: BatchSource;
  /** Last stage only. */
  loss?: LossSpec;
  /** Averages this stage's gradients with the same stage of other pipeline replicas. */
  replicas?: GradientAverager;
  timeline?: Timeline;
  /** Longest wait for a neighbour's tensor (default 60 s). */
  receiveTimeoutMs?: number;
  onStep?(report: StageStepReport): void;
  /**
   * Awaited after each optimizer step (checkpoint, report, agreed stop); returning false ends the
   * run there. Every stage must stop after the same step, or its neighbours wait for it in vain.
   */
  afterStep?(report: StageStepReport): Promise<boolean | void> | boolean | void;
}

export interface StageStepReport {
  step: number;
  /** The mini-batch's mean loss, known on the last stage. */
  loss?: number;
  /** Share of the mini-batch classified right before the update (last stage). */
  accuracy?: number;
  stepMs: number;
  peakInFlight: number;
  peakHeldBytes: number;
}

export interface PipelineStageResult {
  steps: number;
  /** Mean loss of every mini-batch (last stage only; empty elsewhere). */
  losses: number[];
  /** Share of every mini-batch classified right before its update (last stage only; empty elsewhere). */
  accuracies: number[];
  /** Most micro-batches held between forward and backward, over the run. */
  peakInFlight: number;
  /** Most bytes held for pending backward passes, over the run. */
  peakHeldBytes: number;
}

/**
 * Runs one pipeline stage for `steps` mini-batches: per mini-batch, the schedule's forward and
 * backward passes over M micro-batches, gradients accumulated, optionally averaged across replicas,
 * then one optimizer step. Every stage of the pipeline (and every replica) calls this with the same
 * schedule, batch size and step count.
 */
export async function runPipelineStage(options: PipelineStageOptions): Promise<PipelineStageResult> {
  const { stage, stages, neighbours, schedule, timeline } = options;
  const isFirst = stage.index === 0;
  const isLast = stage.index === stages - 1;
  if (isFirst !== !neighbours.previous) throw new PipelineError('usage', `stage ${stage.index} of ${stages} ${isFirst ? 'has no previous stage' : 'needs a link to the previous stage'}`);
  if (isLast !== !neighbours.next) throw new PipelineError('usage', `stage ${stage.index} of ${stages} ${isLast ? 'has no next stage' : 'needs a link to the next stage'}`);
  if (isFirst && !options.batches) throw new PipelineError('usage', 'the first stage needs a batch source');
  if (!Number.isInteger(options.steps) || options.steps < 0) throw new PipelineError('usage', `steps must be a non-negative integer, got ${options.steps}`);
  const kind = schedule.kind ?? 'gpipe';
  const ops = stageSchedule(kind, { stage: stage.index, stages, microBatches: schedule.microBatches });
  const compute = new StageCompute({ stage, isFirst, isLast, rematerialize: schedule.rematerialize ?? false, deferWeightGradients: schedule.deferWeightGradients ?? true, ...(options.loss ? { loss: options.loss } : {}) });
  log.debug({ stage: stage.describe(), schedule: kind, microBatches: schedule.microBatches, peakInFlight: peakInFlight(ops) }, 'pipeline stage starting');

  const buffers = new StageBuffers();
  const result: PipelineStageResult = { steps: 0, losses: [], accuracies: [], peakInFlight: 0, peakHeldBytes: 0 };
  const firstStep = options.firstStep ?? 0;
  for (let step = firstStep; step < firstStep + options.steps; step++) {
    const startUs = nowUs();
    const batch = isFirst ? await waitForData(options.batches!, step, timeline) : undefined;
    const outcome = await runStageStep(
      { stage, stages, compute, neighbours, ops, microBatches: schedule.microBatches, batchSize: options.batchSize, receiveTimeoutMs: options.receiveTimeoutMs ?? 60_000, buffers, ...(schedule.settleRows ? { settleRows: schedule.settleRows } : {}), settleWhileWaiting: schedule.settleWhileWaiting ?? true, ...(timeline ? { timeline } : {}) },
      step,
      batch,
    );
    // take() multiplies the deferred weight gradients: timed as part of the update.
    const timed = <T>(fn: () => T): T => (timeline ? timeline.time('update', step, fn) : fn());
    const update = (ready: tf.NamedTensorMap): void => {
      options.optimizer.applyGradients(ready);
      // The new weights' packing now, while this stage waits for its first activation, instead of
      // in the first forward pass (the first stage has no such wait: its first forward follows).
      if (!isFirst) prepackDenseWeights(stage);
    };
    const averaged = options.replicas && options.replicas.replicas > 1 ? options.replicas : undefined;
    let gradients: tf.NamedTensorMap | undefined;
    try {
      if (averaged) {
        gradients = timed(() => compute.gradients.take());
        const averaging = averaged.average(gradients);
        gradients = timeline ? await timeline.wait('all-reduce', step, averaging) : await averaging;
        const ready = gradients;
        timed(() => update(ready));
      } else {
        timed(() => update((gradients = compute.gradients.take())));
      }
    } finally {
      if (gradients) tf.dispose(gradients);
    }
    const endUs = nowUs();
    timeline?.stepDone(step, startUs, endUs);
    result.steps++;
    if (outcome.loss !== undefined) result.losses.push(outcome.loss);
    if (outcome.correct !== undefined) result.accuracies.push(outcome.correct / options.batchSize);
    result.peakInFlight = Math.max(result.peakInFlight, outcome.peakInFlight);
    result.peakHeldBytes = Math.max(result.peakHeldBytes, outcome.peakHeldBytes);
    const report: StageStepReport = {
      step,
      ...(outcome.loss !== undefined ? { loss: outcome.loss } : {}),
      ...(outcome.correct !== undefined ? { accuracy: outcome.correct / options.batchSize } : {}),
      stepMs: (endUs - startUs) / 1000, peakInFlight: outcome.peakInFlight, peakHeldBytes: outcome.peakHeldBytes };
    options.onStep?.(report);
    if (options.afterStep && (await options.afterStep(report)) === false) break;
  }
  return result;
}

async function waitForData(batches: BatchSource, step: number, timeline: Timeline | undefined): Promise<Batch> {
  if (!timeline) return batches.next();
  // Timed from before next(): an in-memory source does all its work synchronously inside it.
  const start = nowUs();
  try {
    return await batches.next();
  } finally {
    timeline.record('data', step, start, nowUs());
  }
}
