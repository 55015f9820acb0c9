import * as tf from '@tensorflow/tfjs';
import type { TrainingJob } from '../../../shared/job/schema.js';
import { FusedAdam } from '../../../shared/engine/fused-adam.js';
import { createOptimizer } from '../../trainer/optimizer.js';

/**
 * A launched stage's optimizer: FusedAdam for Adam on the wasm backend (one fused pass per variable
 * instead of tfjs's kernels, the same weights bit for bit; launched stages never checkpoint optimizer
 * state, the one thing it cannot do), tfjs's own otherwise. Not on the cpu backend: there tf.tensor
 * keeps the array it is given, and FusedAdam hands it views of its kernel memory, which moves when
 * that memory grows (the weights read NaN after the first step).
 */
export function stageOptimizer(job: Pick<TrainingJob, 'optimizer' | 'learningRate'>): tf.Optimizer {
  return job.optimizer === 'adam' && tf.getBackend() === 'wasm' ? new FusedAdam(job.learningRate) : createOptimizer(job);
}
