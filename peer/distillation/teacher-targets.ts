import * as tf from '@tensorflow/tfjs';
import { emptyTable, writeTopK, type SoftTargetTable } from '../../coordinator/distillation/soft-target-table.js';
import { gatherBatch } from '../../shared/data/epoch-batches.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { yieldToEventLoop } from '../session/yield-to-event-loop.js';

export interface TeacherShard {
  /** Training samples [start, end) in dataset order. */
  start: number;
  end: number;
  k: number;
  temperature: number;
  batchSize: number;
}

/**
 * This peer's part of the soft targets: the teacher's logits for its shard of the training set,
 * compressed to top-k as they are computed (the full logits of a shard are never held at once).
 * Yields between batches so heartbeats and a cancel from the coordinator get through.
 */
export async function teacherTargets(
  teacher: tf.LayersModel,
  data: ImageDataset,
  shard: TeacherShard,
  inputShape: number[],
  isCancelled: () => boolean,
): Promise<SoftTargetTable> {
  const { start, end, k, temperature, batchSize } = shard;
  if (!(start >= 0 && end <= data.count && start < end)) throw new Error(`shard [${start}, ${end}) is not within the ${data.count} training samples`);
  const table = emptyTable(end - start, data.numClasses, k, temperature);
  for (let from = start; from < end; from += batchSize) {
    if (isCancelled()) throw new Error('cancelled by the coordinator');
    const to = Math.min(from + batchSize, end);
    const samples = Uint32Array.from({ length: to - from }, (_, i) => from + i);
    const batch = gatherBatch(data, samples, 0, samples.length);
    const logits = tf.tidy(() => teacher.predict(tf.tensor(batch.xs, [batch.size, ...inputShape])) as tf.Tensor);
    const values = (await logits.data()) as Float32Array;
    logits.dispose();
    if (values.length !== batch.size * data.numClasses) throw new Error(`the teacher outputs ${values.length / batch.size} values per sample, the dataset has ${data.numClasses} classes`);
    writeTopK(table, from - start, values);
    await yieldToEventLoop();
  }
  return table;
}
