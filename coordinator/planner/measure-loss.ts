import * as tf from '@tensorflow/tfjs';
import { crossEntropy, type OutputKind } from '../../peer/trainer/loss.js';
import { fitLinear, type LinearCost } from './linear-cost.js';

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

/** Forward + backward of the training loss on the model's output, as a function of the batch (CPU milliseconds). */
export function measureLossCost(numClasses: number, outputKind: OutputKind, batchSizes: readonly [number, number], repeats = 5): LinearCost {
  const timeAt = (samples: number): number => {
    const logits = tf.randomUniform([samples, numClasses], outputKind === 'probabilities' ? 0.01 : -3, outputKind === 'probabilities' ? 1 : 3, 'float32', 5);
    const labels = tf.tensor1d(Array.from({ length: samples }, (_, i) => i % numClasses), 'int32');
    const times: number[] = [];
    try {
      for (let round = 0; round < repeats + 1; round++) {
        const started = cpuNowMs();
        const { value, grads } = tf.engine().gradients(() => crossEntropy(logits, labels, numClasses, outputKind) as tf.Scalar, [logits]);
        value.dataSync();
        grads[0]?.dataSync();
        const ms = cpuNowMs() - started;
        tf.dispose([value, ...grads]);
        if (round > 0) times.push(ms);
      }
    } finally {
      tf.dispose([logits, labels]);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)]!;
  };
  const [small, large] = batchSizes;
  return fitLinear({ samples: small, ms: timeAt(small) }, { samples: large, ms: timeAt(large) });
}
