import * as tf from '@tensorflow/tfjs';
import { emptyTable, writeTopK, type SoftTargetTable } from '../../coordinator/distillation/soft-target-table.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { yieldToEventLoop } from '../session/yield-to-event-loop.js';
import { inOrderBatches } from './distillation-data.js';

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
  const batches = inOrderBatches(data, start, end, batchSize, 'mnist:train');
  try {
    for (let from = start; from < end; ) {
      if (isCancelled()) throw new Error('cancelled by the coordinator');
      const batch = await batches.next();
      const logits = tf.tidy(() => teacher.predict(tf.tensor(batch.xs, [batch.size, ...inputShape])) as tf.Tensor);
      const values = (await logits.data()) as Float32Array;
      logits.dispose();
      if (values.length !== batch.size * data.numClasses) throw new Error(`the teacher outputs ${values.length / batch.size} values per sample, the dataset has ${data.numClasses} classes`);
      writeTopK(table, from - start, values);
      from += batch.size;
      await yieldToEventLoop();
    }
  } finally {
    await batches.close();
  }
  return table;
}
