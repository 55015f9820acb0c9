import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../shared/data/epoch-batches.js';
import { PipelineError } from './errors.js';
import { labelledLength, unpackLabelled, writeLabels } from './links/labelled-activation.js';
import { describeTag, type NeighbourLink, type StageNeighbours, type StageTensor, type TensorTag } from './links/neighbour-link.js';
import { microBatchSizes, splitMiniBatch, type MicroBatch } from './microbatch.js';
import type { StageModule } from './partition/stage-module.js';
import type { StageOp } from './schedule/schedule.js';
import type { StageBuffers } from './stage-buffers.js';
import type { StageCompute } from './stage-compute.js';
import { copyFloat32Into } from '../../shared/engine/tensor-read.js';
import { nowUs, type Timeline } from './timeline/timeline.js';


export interface StageStepContext {
  stage: StageModule;
  stages: number;
  compute: StageCompute;
  neighbours: StageNeighbours;
  /** This stage's order of forward and backward passes (see schedule/). */
  ops: readonly StageOp[];
  microBatches: number;
  /** Samples per mini-batch (per replica); every stage knows it, so every tensor's size is checked. */
  batchSize: number;
  receiveTimeoutMs: number;
  /** Receive and send buffers reused from one mini-batch to the next (one per micro-batch). */
  buffers: StageBuffers;
  /**
   * First stage: also multiply the deferred weight-gradient factors kept so far during the backward
   * passes every `settleRows` rows, whether or not it would wait. Nobody waits for the first stage's
   * backward passes, but smaller products cost more (each writes and accumulates the whole weight
   * gradient): on mlp-deep, mini-batch 256, M = 8, products every 64 rows gave 1.38× one process,
   * every 128 or 256 rows 1.54× (rp-bench, side by side), and at mini-batch 1024 one product of all
   * rows beat 128-row ones (1.58× vs 1.49×). Off by default.
   */
  settleRows?: number;
  /**
   * First stage (on by default): before waiting for an output gradient that has not arrived yet,
   * multiply the factors kept so far (once they hold a quarter of the mini-batch: smaller products
   * lose efficiency), as zero-bubble schedules fill their bubbles with weight-gradient passes; when
   * gradients are queued already, their backward passes go first, the rest waits for the update.
   * mlp-deep, M = 8, four side-by-side rp-bench runs: 1.52–1.65× against 1.31–1.57× without, bubble
   * 9.6–11.9% against 14.4–15.5%.
   */
  settleWhileWaiting?: boolean;
  timeline?: Timeline;
}

export interface StageStepOutcome {
  /** The mini-batch's mean loss (last stage only). */
  loss?: number;
  /** Samples of the mini-batch classified right before the update (last stage only). */
  correct?: number;
  /** Most micro-batches held between their forward and backward passes. */
  peakInFlight: number;
  /** Most bytes held for pending backward passes. */
  peakHeldBytes: number;
}

/**
 * One mini-batch on one stage: runs the schedule's forward and backward passes, receiving inputs and
 * output gradients from the neighbours and sending outputs and input gradients on. Sends are not
 * awaited before the next pass, so they overlap the computation; the step ends once all have left.
 * The accumulated weight gradients stay in `compute.gradients` for the optimizer step.
 */
export async function runStageStep(ctx: StageStepContext, step: number, batch?: Batch): Promise<StageStepOutcome> {
  const { stage, stages, compute, neighbours, timeline } = ctx;
  const isFirst = stage.index === 0;
  const isLast = stage.index === stages - 1;
  const sizes = microBatchSizes(ctx.batchSize, ctx.microBatches);
  let micro: MicroBatch[] = [];
  if (isFirst) {
    if (!batch) throw new PipelineError('usage', 'the first stage needs a mini-batch for every step');
    if (batch.size !== ctx.batchSize) throw new PipelineError('usage', `mini-batch of ${batch.size} samples, the pipeline was set up for ${ctx.batchSize}`);
    micro = splitMiniBatch(batch, ctx.microBatches);
  }
  const inputElements = stage.inputShape.reduce((a, b) => a * b, 1);
  const outputElements = stage.outputShape.reduce((a, b) => a * b, 1);
  const sends: Promise<void>[] = [];
  const send = (link: NeighbourLink, tag: TensorTag, data: StageTensor): void => {
    const start = nowUs();
    const sent = link.send(tag, data).then(() => timeline?.record('send', step, start, nowUs(), { micro: tag.micro, detail: `${tag.kind} to ${link.label}` }));
    sent.catch(() => {});
    sends.push(sent);
  };
  const receive = async (link: NeighbourLink, tag: TensorTag, elements: number, into: Float32Array): Promise<StageTensor> => {
    const wait = link.receive(tag, ctx.receiveTimeoutMs, into);
    const data = timeline ? await timeline.wait('idle', step, wait, { micro: tag.micro, detail: `waiting for ${tag.kind} from ${link.label}` }) : await wait;
    if (data.length !== elements) {
      throw new PipelineError('desync', `the ${describeTag(tag)} from ${link.label} has ${data.length} values, expected ${elements}`);
    }
    return data;
  };
  const time = <T>(kind: 'forward' | 'backward', m: number, fn: () => T): T => (timeline ? timeline.time(kind, step, fn, { micro: m }) : fn());

  let loss = 0;
  let correct = 0;
  let peakInFlight = 0;
  let peakHeldBytes = 0;
  try {
    for (const op of ctx.ops) {
      const m = op.micro;
      const n = sizes[m]!;
      if (op.kind === 'forward') {
        let input: tf.Tensor;
        let labels: Int32Array;
        if (isFirst) {
          input = tf.tensor(micro[m]!.xs, [n, ...stage.inputShape]);
          labels = micro[m]!.labels;
        } else {
          // Activation and labels arrive in one frame (one wake-up per micro-batch).
          const length = labelledLength(n, inputElements);
          const data = (await receive(neighbours.previous!, { step, micro: m, kind: 'labelled-activation' }, length, ctx.buffers.get('receive-activation', m, length))) as Float32Array;
          const unpacked = unpackLabelled(data, n, inputElements);
          labels = unpacked.labels;
          input = tf.tensor(unpacked.activation, [n, ...stage.inputShape]);
        }
        const packed = time('forward', m, () => {
          const result = compute.forward(m, input, isLast ? { labels, lossScale: n / ctx.batchSize } : undefined);
          if (result.scaledLoss !== undefined) loss += result.scaledLoss;
          if (result.correct !== undefined) correct += result.correct;
          if (!result.output) return undefined;
          // Straight into the send buffer (no fresh copy per micro-batch), the labels after it.
          const buffer = ctx.buffers.get('send-activation', m, labelledLength(n, outputElements));
          copyFloat32Into(result.output, buffer, 0);
          result.output.dispose();
          return writeLabels(buffer, n * outputElements, labels);
        });
        peakInFlight = Math.max(peakInFlight, compute.inFlight);
        peakHeldBytes = Math.max(peakHeldBytes, compute.heldBytes);
        if (packed) send(neighbours.next!, { step, micro: m, kind: 'labelled-activation' }, packed);
      } else {
        let outputGradient: tf.Tensor | undefined;
        if (isFirst && !isLast && ctx.settleWhileWaiting) await settleWhileWaiting(ctx, step, m);
        if (!isLast) {
          const gradient = (await receive(neighbours.next!, { step, micro: m, kind: 'gradient' }, n * outputElements, ctx.buffers.get('receive-gradient', m, n * outputElements))) as Float32Array;
          outputGradient = tf.tensor(gradient, [n, ...stage.outputShape]);
        }
        const inputGradient = time('backward', m, () => {
          const dx = compute.backward(m, outputGradient);
          if (isFirst && !isLast && ctx.settleRows !== undefined) compute.gradients.settle(ctx.settleRows);
          if (!dx) return undefined;
          // Straight into the micro-batch's send buffer (no fresh copy per micro-batch).
          const values = ctx.buffers.get('send-gradient', m, dx.size);
          copyFloat32Into(dx, values, 0);
          dx.dispose();
          return values;
        });
        if (inputGradient) send(neighbours.previous!, { step, micro: m, kind: 'gradient' }, inputGradient);
      }
    }
    const drained = Promise.all(sends);
    if (timeline) await timeline.wait('idle', step, drained, { detail: 'waiting for sends to drain' });
    else await drained;
  } catch (error) {
    compute.discardAll();
    throw error;
  }
  return { ...(isLast ? { loss, correct } : {}), peakInFlight, peakHeldBytes };
}

/** Lets the event loop read what the sockets received meanwhile (setImmediate runs after the poll phase). */
const pollIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function settleWhileWaiting(ctx: StageStepContext, step: number, micro: number): Promise<void> {
  const { compute, neighbours, timeline } = ctx;
  if (compute.gradients.keptRows < Math.ceil(ctx.batchSize / 4)) return;
  await pollIo();
  if (neighbours.next!.hasArrived()) return;
  const settle = (): void => compute.gradients.settle();
  if (timeline) timeline.time('backward', step, settle, { micro, detail: 'weight gradients while waiting' });
  else settle();
}
