import * as tf from '@tensorflow/tfjs';
import type { TrainingJob } from '../../../shared/job/schema.js';
import { FusedAdam } from '../../../shared/engine/fused-adam.js';
import { createOptimizer } from '../../trainer/optimizer.js';

/**
 * A launched stage's optimizer: FusedAdam for Adam on the wasm backend (one fused pass per variable
 * instead of tfjs's kernels, the same weights bit for bit; launched stages never checkpoint optimizer
 * state, the one thing it cannot do), tfjs's own otherwise. Not on the cpu backend: there tf.tensor
 * keeps the array it is given, FusedAdam hands it a view of its kernel memory, and when that memory
 * grows for the next variable's slot the view is detached: after the first step the first weights
 * read as an empty array (the losses turn NaN). A shared/engine matter, reported.
 */
export function stageOptimizer(job: Pick<TrainingJob, 'optimizer' | 'learningRate'>): tf.Optimizer {
  return job.optimizer === 'adam' && tf.getBackend() === 'wasm' ? new FusedAdam(job.learningRate) : createOptimizer(job);
}
