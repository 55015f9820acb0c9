import * as tf from '@tensorflow/tfjs';
import type { FlatGradients } from '../../shared/engine/flat-gradients.js';
import type { FusedAdam } from '../../shared/engine/fused-adam.js';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { ringWireBytes } from '../compression/gradient-reducer.js';
import type { FlatGradientExchange } from '../trainer/train-step.js';
import type { ExchangeReport } from './gradient-exchange.js';
import type { GradientFusion } from './gradient-fusion.js';

/**
 * The data-parallel exchange with Adam inside the all-reduce (ZeRO stage 1's sharded optimizer step,
 * without sharding the optimizer's memory): each rank applies FusedAdam only to the segment whose
 * gradient sum it finishes in the ring's reduce-scatter, in place, and the all-gather then carries
 * updated weights instead of summed gradients. Each rank does 1/N of Adam, and its share overlaps
 * the rest of the ring. Same bytes on the wire as the plain float32 all-reduce, and every element's
 * arithmetic is unchanged: the weights are those of the plain exchange followed by FusedAdam.
 * Float32 only (a lossy codec would round the weights on the wire); the gradients arrive weighted
 * by the rank's share already (trainStep's lossScale).
 */
export function createShardedAdamExchange(args: {
  ring: RingCollective;
  fusion: GradientFusion;
  optimizer: FusedAdam;
  onReport?: (report: ExchangeReport) => void;
}): FlatGradientExchange {
  const { ring, fusion, optimizer } = args;
  const entries = fusion.layout.entries;
  if (entries.some((e) => e.control)) throw new Error('the sharded Adam exchange does not carry control entries');
  const bytes = ringWireBytes(fusion.layout.length, 4, ring.worldSize);
  return {
    async flat(grads): Promise<FlatGradients> {
      const started = performance.now();
      try {
        fusion.gather(grads);
      } finally {
        tf.dispose(grads);
      }
      const step = optimizer.beginShardedStep(entries);
      let appliedMs = 0;
      const timed = (work: () => void): void => {
        const start = performance.now();
        work();
        appliedMs += performance.now() - start;
      };
      await ring.allReduce(fusion.buffer, { op: 'sum', onSegmentReduced: (region) => timed(() => step.update(fusion.buffer, region)) });
      timed(() => step.finish(fusion.buffer));
      args.onReport?.({ ms: performance.now() - started - appliedMs, wireBytes: bytes, fp32Bytes: bytes });
      return { values: fusion.buffer, entries, appliedMs };
    },
  };
}
