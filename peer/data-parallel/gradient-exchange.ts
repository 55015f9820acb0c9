import * as tf from '@tensorflow/tfjs';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { scaleInPlace } from '../allreduce/reduce-kernels.js';
import { sumReduceStats, type GradientReducer, type ReduceStats } from '../compression/gradient-reducer.js';
import type { FlatGradients } from '../../shared/engine/flat-gradients.js';
import type { GradientExchange } from '../trainer/train-step.js';
import type { GradientFusion } from './gradient-fusion.js';

export interface ExchangeReport extends ReduceStats {
  /** Wall time of the whole exchange: nothing else runs meanwhile, so all of it is exposed. */
  ms: number;
}

export interface GradientExchangeArgs {
  ring: RingCollective;
  fusion: GradientFusion;
  reducer: GradientReducer;
  /** This step's share of the global batch, read at each exchange. */
  share: () => number;
  /**
   * The gradients arrive weighted by the share already (trainStep's lossScale): not scaled again
   * here. The reducer is still told the share (PowerSGD's error feedback needs it).
   */
  weighted?: boolean;
  onReport?: (report: ExchangeReport) => void;
  /** The value each control entry of the layout gets this step (default 0), written after the share scaling. */
  control?: (name: string) => number;
}

/** The data-parallel exchange handing back tensors (for any tfjs optimizer); see createFlatGradientExchange. */
export function createGradientExchange(args: GradientExchangeArgs): GradientExchange {
  const flat = createFlatGradientExchange(args);
  return async (grads) => {
    await flat(grads);
    return args.fusion.scatter();
  };
}

/**
 * The data-parallel GradientExchange: each rank weights its gradients by its share of the global
 * batch (its local batch / the global batch), and the ring sums them, so every replica applies the
 * gradient of the whole global batch, as single-process training would. Buckets are reduced as soon
 * as they are copied out, so the ring is already moving bucket k while bucket k+1 is copied.
 * The summed gradients are left in the fused buffer, which an optimizer such as FusedAdam reads
 * directly (no tensor per gradient rebuilt and read out again).
 */
export function createFlatGradientExchange(args: GradientExchangeArgs): (grads: tf.NamedTensorMap) => Promise<FlatGradients> {
  const { ring, fusion, reducer } = args;
  const whole = { start: 0, end: fusion.layout.length };
  return async (grads) => {
    const started = performance.now();
    const share = args.share();
    const pending: Promise<ReduceStats>[] = [];
    try {
      for (const bucket of reducer.bucketed ? fusion.layout.buckets : [whole]) {
        fusion.gather(grads, bucket);
        if (share !== 1 && !args.weighted) scaleInPlace(fusion.buffer.subarray(bucket.start, bucket.end), share);
        writeControls(fusion, bucket, args.control);
        if (reducer.bucketed) pending.push(reducer.reduce(fusion.buffer, bucket, ring, share));
      }
    } finally {
      tf.dispose(grads);
    }
    if (!reducer.bucketed) pending.push(reducer.reduce(fusion.buffer, whole, ring, share));
    const stats = await Promise.all(pending);
    args.onReport?.({ ms: performance.now() - started, ...sumReduceStats(stats) });
    return fusion.flat();
  };
}

/** Control entries are summed exactly as given: written after scaling, never weighted by the share. */
function writeControls(fusion: GradientFusion, bucket: { start: number; end: number }, control: ((name: string) => number) | undefined): void {
  for (const entry of fusion.layout.entries) {
    if (!entry.control || entry.offset < bucket.start || entry.offset >= bucket.end) continue;
    fusion.buffer.fill(control?.(entry.name) ?? 0, entry.offset, entry.offset + entry.size);
  }
}
