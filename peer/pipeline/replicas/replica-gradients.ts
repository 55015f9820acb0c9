import * as tf from '@tensorflow/tfjs';
import type { RingCollective } from '../../allreduce/ring-collective.js';
import { fusedLayout } from '../../data-parallel/fused-layout.js';
import { GradientFusion } from '../../data-parallel/gradient-fusion.js';

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
  // The data-parallel trainer's fused buffer, laid out for this stage's gradients (kept while they keep their names and shapes).
  let fusion: GradientFusion | undefined;
  let layoutKey = '';
  return {
    replicas: collective.worldSize,
    async average(gradients) {
      const variables = Object.keys(gradients).map((name) => ({ name, shape: gradients[name]!.shape }));
      const key = JSON.stringify(variables);
      if (!fusion || key !== layoutKey) {
        fusion = new GradientFusion(fusedLayout(variables));
        layoutKey = key;
      }
      const fused = fusion.buffer;
      fusion.gather(gradients);
      tf.dispose(gradients);
      if (share !== undefined) {
        for (let i = 0; i < fused.length; i++) fused[i]! *= share;
      }
      await collective.allReduce(fused, { op: share !== undefined ? 'sum' : 'mean' });
      const averaged: tf.NamedTensorMap = {};
      for (const entry of fusion.layout.entries) {
        // slice(): a tensor may keep the array it was made from, and the buffer is reused next step.
        averaged[entry.name] = tf.tensor(fused.slice(entry.offset, entry.offset + entry.size), entry.shape);
      }
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
