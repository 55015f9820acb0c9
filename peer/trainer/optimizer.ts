import * as tf from '@tensorflow/tfjs';
import type { TrainingJob } from '../../shared/job/schema.js';

export function createOptimizer(job: Pick<TrainingJob, 'optimizer' | 'learningRate'>): tf.Optimizer {
  switch (job.optimizer) {
    case 'adam':
      return tf.train.adam(job.learningRate);
    case 'sgd':
      return tf.train.sgd(job.learningRate);
    case 'momentum':
      return tf.train.momentum(job.learningRate, 0.9);
    case 'rmsprop':
      return tf.train.rmsprop(job.learningRate);
  }
}
