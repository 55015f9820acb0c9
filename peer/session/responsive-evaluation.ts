import type * as tf from '@tensorflow/tfjs';
import { evaluate, type EvaluateOptions, type EvaluationData, type Evaluation } from '../trainer/evaluate.js';
import { yieldToEventLoop } from './yield-to-event-loop.js';

/**
 * `evaluate`, yielding to the event loop after every batch so the coordinator link stays alive
 * during a long evaluation on a busy machine, and reporting progress. Same batches, same numbers.
 */
export async function evaluateResponsively(
  model: tf.LayersModel,
  data: EvaluationData,
  options: Omit<EvaluateOptions, 'onBatch'>,
  onProgress?: (done: number, total: number) => void,
): Promise<Evaluation> {
  return evaluate(model, data, {
    ...options,
    onBatch: async (done, total) => {
      onProgress?.(done, total);
      await yieldToEventLoop();
    },
  });
}
