import * as tf from '@tensorflow/tfjs';
import type { RingCollective } from '../../allreduce/ring-collective.js';
import { copyFloat32Into } from '../../../shared/engine/tensor-read.js';

/**
 * Pipeline + data parallelism: R replicas of the same pipeline each train on their own share of the
 * data, and stage s of every replica averages its gradients with stage s of the others before the
 * optimizer step, so all replicas of a stage keep identical weights.
 */
export interface GradientAverager {
  readonly replicas: number;
  /** Averages gradients across replicas; takes ownership of `gradients`, returns new tensors. */
  average(gradients: tf.NamedTensorMap): Promise<tf.NamedTensorMap>;
}

export interface AveragerOptions {
  /**
   * This replica's share of the global batch (its slice / the global batch). Given, each replica
   * weights its slice-mean gradient by it and the ring sums: the exact global-batch mean even when
   * slices differ by a sample. Absent: a plain mean (equal slices).
   */
  share?: number;
}

/**
 * Averages over the ring all-reduce of `peer/allreduce`, one ring per stage (its members are the
 * replicas of that stage). All gradients travel fused in one buffer, reused from step to step.
 */
export function ringGradientAverager(collective: RingCollective, options: AveragerOptions = {}): GradientAverager {
  const { share } = options;
  let fused = new Float32Array(0);
  return {
    replicas: collective.worldSize,
    async average(gradients) {
      const names = Object.keys(gradients);
      const total = names.reduce((sum, name) => sum + gradients[name]!.size, 0);
      if (fused.length !== total) fused = new Float32Array(total);
      let offset = 0;
      for (const name of names) {
        copyFloat32Into(gradients[name]!, fused, offset);
        offset += gradients[name]!.size;
      }
      const shapes = names.map((name) => gradients[name]!.shape);
      tf.dispose(gradients);
      if (share !== undefined) {
        for (let i = 0; i < fused.length; i++) fused[i]! *= share;
      }
      await collective.allReduce(fused, { op: share !== undefined ? 'sum' : 'mean' });
      const averaged: tf.NamedTensorMap = {};
      offset = 0;
      names.forEach((name, i) => {
        const size = tf.util.sizeFromShape(shapes[i]!);
        // slice(): a tensor may keep the array it was made from, and `fused` is reused next step.
        averaged[name] = tf.tensor(fused.slice(offset, offset + size), shapes[i]);
        offset += size;
      });
      return averaged;
    },
  };
}

/**
 * Call before closing the replica ring after the last step. Closing a link drops what the other side
 * has not read yet, so a replica must not close while another still waits for its last all-reduce
 * frames. Completing one more all-reduce proves every replica contributed to it, hence finished all
 * real work; this barrier itself may then fail when a faster replica closes first, which is harmless.
 */
export async function replicasFinished(collective: RingCollective): Promise<void> {
  try {
    await collective.allReduce(new Float32Array(1));
  } catch {
    // Every replica had finished its real work (see above): nothing is lost.
  }
}
