import type { Region } from '../allreduce/partition.js';
import type { RingCollective } from '../allreduce/ring-collective.js';

/** What one reduction sent, for the docs' "bytes saved" figures and per-step reports. */
export interface ReduceStats {
  /** Bytes this rank put on the wire. */
  wireBytes: number;
  /** What the same reduction would have sent uncompressed (fp32). */
  fp32Bytes: number;
}

/**
 * Sums every rank's gradients in place (each rank has already weighted its own by its share of the
 * global batch), so that afterwards all ranks hold the same bits: the exact sum, or a compressed
 * approximation whose error each rank keeps and adds back next step (error feedback).
 */
export interface GradientReducer {
  readonly name: string;
  /**
   * True when the reducer works element-wise on any region: the exchange then reduces bucket by
   * bucket while it is still copying out the later buckets. Otherwise it gets the whole buffer.
   */
  readonly bucketed: boolean;
  /** `share`: this rank's fraction of the global batch (its weight in the sum). */
  reduce(buffer: Float32Array, region: Region, ring: RingCollective, share: number): Promise<ReduceStats>;
}

/** Bytes a ring all-reduce of `elements` values sends per rank: 2(N−1)/N of the buffer. */
export function ringWireBytes(elements: number, bytesPerElement: number, worldSize: number): number {
  return worldSize === 1 ? 0 : Math.round((2 * (worldSize - 1) * elements * bytesPerElement) / worldSize);
}

/** The stats of several reductions (the buckets of one exchange) added up. */
export function sumReduceStats(stats: readonly ReduceStats[]): ReduceStats {
  return { wireBytes: stats.reduce((sum, s) => sum + s.wireBytes, 0), fp32Bytes: stats.reduce((sum, s) => sum + s.fp32Bytes, 0) };
}
