import type { Region } from '../allreduce/partition.js';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { ringWireBytes, type GradientReducer, type ReduceStats } from './gradient-reducer.js';

/** No compression: a float32 ring all-reduce (sum), exact and bit-identical on every rank. */
export class PlainReducer implements GradientReducer {
  readonly name = 'none';
  readonly bucketed = true;

  async reduce(buffer: Float32Array, region: Region, ring: RingCollective): Promise<ReduceStats> {
    await ring.allReduce(buffer.subarray(region.start, region.end), { op: 'sum' });
    const bytes = ringWireBytes(region.end - region.start, 4, ring.worldSize);
    return { wireBytes: bytes, fp32Bytes: bytes };
  }
}
