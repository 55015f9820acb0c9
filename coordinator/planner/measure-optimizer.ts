import * as tf from '@tensorflow/tfjs';
import { createOptimizer } from '../../peer/trainer/optimizer.js';
import type { OptimizerName } from './optimizer-state.js';

/** Per-step costs of a layer's weights that do not depend on the batch, in CPU milliseconds of this process. */
export interface WeightCosts {
  /** One optimizer update of the layer's weights. */
  updateMs: number;
  /** Adding one micro-batch's gradients into the running sums (a pipeline stage, per micro-batch after the first). */
  accumulateMs: number;
  /** Copying the gradients out to a flat buffer and back into tensors (data parallel, around the all-reduce). */
  copyMs: number;
}

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * Times, per layer, what training does with its weights once per step. Runs on copies of the
 * weights (the model is not changed); one optimizer per layer, since tfjs optimizers key their state
 * by position in the gradient list. tfjs's Node backends (wasm, cpu, tensorflow) run kernels
 * synchronously, so the work is done when the call returns.
 */
export function measureWeightCosts(layers: readonly tf.layers.Layer[], optimizerName: OptimizerName, options: { repeats?: number; warmUp?: number } = {}): WeightCosts[] {
  const repeats = options.repeats ?? 5;
  const warmUp = options.warmUp ?? 2;
  return layers.map((layer, index) => {
    const shapes = layer.trainableWeights.map((w) => w.shape as number[]);
    if (shapes.length === 0) return { updateMs: 0, accumulateMs: 0, copyMs: 0 };
    const variables = shapes.map((shape, i) => tf.variable(tf.randomUniform(shape, -0.05, 0.05, 'float32', i), true, `planner_l${index}_w${i}_${Math.random().toString(36).slice(2)}`));
    const gradients = shapes.map((shape, i) => tf.randomUniform(shape, -1e-3, 1e-3, 'float32', 10 + i));
    const optimizer = createOptimizer({ optimizer: optimizerName, learningRate: 1e-3 });
    const update: number[] = [];
    const accumulate: number[] = [];
    const copy: number[] = [];
    try {
      for (let round = 0; round < warmUp + repeats; round++) {
        const named: tf.NamedTensorMap = {};
        variables.forEach((v, i) => (named[v.name] = gradients[i]!));
        let started = cpuNowMs();
        optimizer.applyGradients(named);
        const updateMs = cpuNowMs() - started;

        started = cpuNowMs();
        const sums = tf.tidy(() => gradients.map((g) => tf.add(g, g)));
        const accumulateMs = cpuNowMs() - started;
        tf.dispose(sums);

        started = cpuNowMs();
        const flat = new Float32Array(gradients.reduce((n, g) => n + g.size, 0));
        let offset = 0;
        for (const g of gradients) {
          flat.set(g.dataSync() as Float32Array, offset);
          offset += g.size;
        }
        offset = 0;
        const back = gradients.map((g) => {
          const t = tf.tensor(flat.subarray(offset, offset + g.size), g.shape);
          offset += g.size;
          return t;
        });
        const copyMs = cpuNowMs() - started;
        tf.dispose(back);

        if (round >= warmUp) {
          update.push(updateMs);
          accumulate.push(accumulateMs);
          copy.push(copyMs);
        }
      }
      return { updateMs: median(update), accumulateMs: median(accumulate), copyMs: median(copy) };
    } finally {
      optimizer.dispose();
      tf.dispose([...variables, ...gradients]);
    }
  });
}
