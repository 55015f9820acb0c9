import * as tf from '@tensorflow/tfjs';
import type { Region } from '../allreduce/partition.js';
import { allocateRingBuffer } from '../allreduce/ring-collective.js';
import type { FlatGradients } from '../../shared/engine/flat-gradients.js';
import { copyFloat32Into } from '../../shared/engine/tensor-read.js';
import type { FusedLayout } from './fused-layout.js';

/**
 * One reusable buffer for all of a step's gradients: filled from the gradient tensors bucket by
 * bucket, reduced in place, then turned back into tensors. No per-tensor round trips on the wire,
 * and no per-step allocation of the buffer (fresh memory is slow here, DESIGN.md §3). The buffer
 * is shared memory, so the threaded data plane sends straight from it.
 */
export class GradientFusion {
  readonly buffer: Float32Array;

  constructor(readonly layout: FusedLayout) {
    this.buffer = allocateRingBuffer(layout.length);
  }

  /** Copies the gradients of the variables inside `region` (a bucket) into the buffer. */
  gather(grads: tf.NamedTensorMap, region: Region = { start: 0, end: this.layout.length }): void {
    for (const entry of this.layout.entries) {
      if (entry.control || entry.offset < region.start || entry.offset >= region.end) continue;
      const grad = grads[entry.name];
      if (!grad) throw new Error(`no gradient for variable '${entry.name}': every rank must train the same variables`);
      if (grad.size !== entry.size) throw new Error(`gradient of '${entry.name}' has ${grad.size} values, expected ${entry.size}`);
      copyFloat32Into(grad, this.buffer, entry.offset);
    }
  }

  /** The summed value of a control entry after an exchange (its first element). */
  control(name: string): number {
    const entry = this.layout.entries.find((e) => e.control && e.name === name);
    if (!entry) throw new Error(`the fused layout has no control entry '${name}'`);
    return this.buffer[entry.offset]!;
  }

  /** The buffer's current values as flat gradients (valid until the buffer is next written). */
  flat(): FlatGradients {
    return { values: this.buffer, entries: this.layout.entries };
  }

  /**
   * Tensors over the buffer's current values. They are only valid until the buffer is next
   * written: apply and dispose them within the step (trainStep does).
   */
  scatter(): tf.NamedTensorMap {
    const grads: tf.NamedTensorMap = {};
    for (const entry of this.layout.entries) {
      if (entry.control) continue;
      grads[entry.name] = tf.tensor(this.buffer.subarray(entry.offset, entry.offset + entry.size), entry.shape, 'float32');
    }
    return grads;
  }
}
