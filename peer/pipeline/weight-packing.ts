import * as tf from '@tensorflow/tfjs';
import type { StageModule } from './partition/stage-module.js';

/**
 * Packs a stage's dense weights for XNNPACK ahead of their first product after an update.
 *
 * On the wasm backend a matrix product's right operand is packed into XNNPACK's layout on its first
 * use and the packing is cached by tensor; every optimizer step makes each weight a new tensor, so
 * the first forward pass after an update repacks every dense kernel (≈ 5–6 ms per 1024 × 1024
 * weight: mlp-deep's stage pays ≈ 20 ms in its first micro-batch against ≈ 8 ms in the others). A
 * one-row product with each kernel right after the update does that packing then, where a stage
 * other than the first would otherwise wait for its first activation, instead of in the first
 * forward, which is on the pipeline's critical path. It computes nothing that is kept: the weights
 * and every result are unchanged. The product is a plain matMul, as in a recorded forward (under a
 * gradient tape tfjs does not fuse the bias and activation), so it warms the same cached operator.
 */
export function prepackDenseWeights(stage: StageModule): void {
  if (tf.getBackend() !== 'wasm') return;
  tf.tidy(() => {
    for (const layer of stage.layers) {
      if (layer.getClassName() !== 'Dense') continue;
      const kernel = (layer as unknown as { kernel?: tf.LayerVariable }).kernel?.read();
      if (!kernel || kernel.rank !== 2) continue;
      tf.matMul(tf.zeros([1, kernel.shape[0]!]), kernel);
    }
  });
}
