import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../../../shared/data/pipeline/dataset.js';
import type { Sample } from '../../../shared/data/pipeline/source.js';
import type { StageNeighbours } from '../../pipeline/links/neighbour-link.js';
import type { StageModule } from '../../pipeline/partition/stage-module.js';
import type { Evaluation } from '../../trainer/evaluate.js';
import { crossEntropy, type OutputKind } from '../../trainer/loss.js';
import { yieldToEventLoop } from '../yield-to-event-loop.js';

export interface PipelineEvaluationOptions {
  stage: StageModule;
  stages: number;
  neighbours: StageNeighbours;
  /** Read by the first stage only. */
  test: Dataset<Sample>;
  batchSize: number;
  numClasses: number;
  outputKind: OutputKind;
  /** Tags the first batch's tensors (after the training steps, so none is mistaken for another). */
  firstTag: number;
  timeoutMs: number;
  /** Last stage: after each batch, samples done and in all. */
  onBatch?(done: number, total: number): void;
}

/**
 * The final evaluation through the pipeline: the first stage reads the test set in order (the same
 * batches as `evaluate`), every stage applies its layers in inference mode and passes the
 * activations on, and the last stage scores them. An empty batch marks the end. Returns the
 * figures on the last stage, undefined on the others.
 */
export async function evaluateThroughPipeline(options: PipelineEvaluationOptions): Promise<Evaluation | undefined> {
  const { stage, stages, neighbours } = options;
  const isFirst = stage.index === 0;
  const isLast = stage.index === stages - 1;
  const total = options.test.source.size;
  let correct = 0;
  let lossSum = 0;
  let seen = 0;
  // Scores a batch on the last stage, or sends its activations on.
  const pass = async (tag: number, input: tf.Tensor | undefined, labels: Int32Array): Promise<void> => {
    if (isLast) {
      if (!input) return;
      const [hits, loss] = tf.tidy(() => {
        const output = stage.apply(input, false);
        const labelTensor = tf.tensor1d(labels, 'int32');
        return [tf.sum(tf.cast(tf.equal(tf.argMax(output, -1), labelTensor), 'int32')), crossEntropy(output, labelTensor, options.numClasses, options.outputKind)];
      });
      correct += (await hits.data())[0]!;
      lossSum += (await loss.data())[0]! * labels.length;
      tf.dispose([hits, loss]);
      seen += labels.length;
      options.onBatch?.(Math.min(seen, total), total);
      return;
    }
    const activation = input ? (tf.tidy(() => stage.apply(input, false)).dataSync() as Float32Array) : new Float32Array(0);
    const next = neighbours.next!;
    await Promise.all([next.send({ step: tag, micro: 0, kind: 'activation' }, activation), next.send({ step: tag, micro: 0, kind: 'labels' }, labels)]);
  };

  let tag = options.firstTag;
  if (isFirst) {
    const iterator = options.test.batch(options.batchSize, { dropRemainder: false }).prefetch(1).iterate();
    try {
      for (let i = 0; i < iterator.batchesPerEpoch; i++) {
        const batch = await iterator.next();
        if (batch.epoch !== 0) break; // samples skipped as bad left fewer batches than counted
        const input = tf.tensor(batch.xs, [batch.size, ...stage.inputShape]);
        try {
          await pass(tag++, input, batch.labels);
        } finally {
          input.dispose();
        }
        await yieldToEventLoop();
      }
    } finally {
      await iterator.close();
    }
    await pass(tag, undefined, new Int32Array(0));
  } else {
    const previous = neighbours.previous!;
    for (;;) {
      const activation = (await previous.receive({ step: tag, micro: 0, kind: 'activation' }, options.timeoutMs)) as Float32Array;
      const labels = (await previous.receive({ step: tag, micro: 0, kind: 'labels' }, options.timeoutMs)) as Int32Array;
      if (labels.length === 0) {
        await pass(tag, undefined, labels);
        break;
      }
      const input = tf.tensor(activation, [labels.length, ...stage.inputShape]);
      try {
        await pass(tag++, input, labels);
      } finally {
        input.dispose();
      }
      await yieldToEventLoop();
    }
  }
  return isLast ? { accuracy: correct / Math.max(1, seen), loss: lossSum / Math.max(1, seen), samples: seen } : undefined;
}
