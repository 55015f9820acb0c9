/**
 * A data-parallel training step whose all-reduce overlaps the backward pass, as PyTorch DDP's
 * bucketed reducer does: each bucket of gradients goes to the ring as soon as it is complete, while
 * the products of the next buckets are still being computed.
 *
 * tfjs hands out gradients only once the whole backward pass is done, so the step records the
 * forward pass with the pipeline's tape (peer/pipeline/autodiff/deferred-tape.ts) and lets the
 * backward pass leave the dense weights' gradients as their two factors (layer input a, output
 * gradient dy). The cheap part of the backward pass (input gradients, biases) runs first; then the
 * weight products run bucket by bucket, last layers first, a large weight cut between rows
 * (dW[r0:r1] = a[:, r0:r1]ᵀ·dy), and after each bucket the step yields to the event loop so the
 * ring's frames move while the next product runs. The arithmetic is tfjs's own (the same products,
 * each output element summed in the same order), so the weights stay those of single-process
 * training (test/data-parallel-processes.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../shared/data/batch.js';
import { copyFloat32RangeInto } from '../../shared/engine/tensor-read.js';
import type { FlatGradientOptimizer } from '../../shared/engine/flat-gradients.js';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { sumReduceStats, type GradientReducer, type ReduceStats } from '../compression/gradient-reducer.js';
import { recordForward, type DeferredWeightGradients } from '../pipeline/autodiff/deferred-tape.js';
import { yieldToEventLoop } from '../session/yield-to-event-loop.js';
import { crossEntropy } from '../trainer/loss.js';
import type { StepContext, StepResult } from '../trainer/train-step.js';
import type { BackwardBucket, GradientPiece } from './backward-buckets.js';
import type { GradientFusion } from './gradient-fusion.js';

export interface OverlappedExchange {
  ring: RingCollective;
  fusion: GradientFusion;
  /** Must be bucketed (element-wise on any region). */
  reducer: GradientReducer;
  buckets: readonly BackwardBucket[];
}

export interface OverlappedStepResult extends StepResult {
  stats: ReduceStats;
}

/**
 * Forward, backward overlapped with the all-reduce, and the optimizer update from the reduced fused
 * buffer. `lossScale` is the rank's share of the global batch (see trainStep). `exchangeMs` counts
 * what the exchange cost this thread: the turns of the event loop between buckets (the ring's
 * reductions run there) and the wait after the last product.
 */
export async function overlappedStep(
  ctx: StepContext & { optimizer: tf.Optimizer & FlatGradientOptimizer },
  batch: Batch,
  exchange: OverlappedExchange,
  lossScale: number,
): Promise<OverlappedStepResult> {
  const started = performance.now();
  const { ring, fusion, reducer, buckets } = exchange;
  const variables = ctx.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const factors = new Map<number, { a: tf.Tensor; dy: tf.Tensor }[]>();
  const deferred: DeferredWeightGradients = {
    weightIds: new Set(variables.map((v) => v.id)),
    keep: (id, a, dy) => factors.set(id, [...(factors.get(id) ?? []), { a, dy }]),
  };
  const xs = tf.tensor(batch.xs, [batch.size, ...ctx.inputShape]);
  const labels = tf.tensor1d(batch.labels, 'int32');
  const byName = new Map<string, { variable: tf.Variable; gradient: tf.Tensor | null }>();
  let loss: number;
  try {
    const recorded = recordForward(() => {
      const outputs = ctx.model.apply(xs, { training: true }) as tf.Tensor;
      const value = crossEntropy(outputs, labels, ctx.numClasses, ctx.outputKind);
      return lossScale === 1 ? value : tf.mul(value, lossScale);
    }, variables);
    loss = (await recorded.output.data())[0]! / lossScale;
    recorded.output.dispose();
    const gradients = recorded.backward(variables, undefined, deferred);
    variables.forEach((variable, i) => byName.set(variable.name, { variable, gradient: gradients[i]! }));
  } catch (error) {
    disposeAll(factors, byName);
    throw error;
  } finally {
    xs.dispose();
    labels.dispose();
  }

  const pending: Promise<ReduceStats>[] = [];
  let exchangeMs = 0;
  try {
    for (const [index, bucket] of buckets.entries()) {
      for (const piece of bucket.pieces) writePiece(piece, byName, factors, fusion.buffer);
      pending.push(reducer.reduce(fusion.buffer, bucket.region, ring, lossScale));
      if (index < buckets.length - 1) {
        // Let the ring send, receive and add while the next bucket's products run.
        const turn = performance.now();
        await yieldToEventLoop();
        exchangeMs += performance.now() - turn;
      }
    }
  } finally {
    disposeAll(factors, byName);
  }
  const waitStart = performance.now();
  const stats = await Promise.all(pending);
  exchangeMs += performance.now() - waitStart;
  ctx.optimizer.applyFlatGradients(fusion.flat());
  return {
    loss,
    computeMs: performance.now() - started - exchangeMs,
    exchangeMs,
    stats: sumReduceStats(stats),
  };
}

/** Computes (a deferred weight's rows) or copies (any other gradient's range) one piece into the buffer. */
function writePiece(
  piece: GradientPiece,
  byName: Map<string, { variable: tf.Variable; gradient: tf.Tensor | null }>,
  factors: Map<number, { a: tf.Tensor; dy: tf.Tensor }[]>,
  buffer: Float32Array,
): void {
  const { entry, rowStart, rowEnd, region } = piece;
  const held = byName.get(entry.name);
  if (!held) throw new Error(`no trainable variable '${entry.name}' for its gradient: every rank must train the same variables`);
  const pairs = factors.get(held.variable.id) ?? [];
  if (held.gradient === null && pairs.length === 0) throw new Error(`the backward pass gave no gradient for '${entry.name}'`);
  const within = { start: region.start - entry.offset, end: region.end - entry.offset };
  if (pairs.length === 0) {
    copyFloat32RangeInto(held.gradient!, within.start, within.end, buffer, region.start);
    return;
  }
  const whole = rowStart === 0 && rowEnd === entry.shape[0];
  const part = tf.tidy(() => {
    // dW[r0:r1] = a[:, r0:r1]ᵀ·dy, summed over the weight's uses (and its non-deferred gradient, if any).
    let sum: tf.Tensor | undefined = held.gradient ? (whole ? held.gradient : tf.slice(held.gradient, [rowStart, 0], [rowEnd - rowStart, -1])) : undefined;
    for (const { a, dy } of pairs) {
      const rows = whole ? a : tf.slice(a, [0, rowStart], [-1, rowEnd - rowStart]);
      const product = tf.matMul(rows, dy, true, false);
      sum = sum ? tf.add(sum, product) : product;
    }
    return sum!;
  });
  try {
    copyFloat32RangeInto(part, 0, part.size, buffer, region.start);
  } finally {
    part.dispose();
  }
}

function disposeAll(factors: Map<number, { a: tf.Tensor; dy: tf.Tensor }[]>, byName: Map<string, { gradient: tf.Tensor | null }>): void {
  for (const pairs of factors.values()) for (const { a, dy } of pairs) tf.dispose([a, dy]);
  factors.clear();
  for (const held of byName.values()) held.gradient?.dispose();
  byName.clear();
}
