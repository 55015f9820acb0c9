import type { Region } from '../allreduce/partition.js';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { Fp16Codec } from './fp16-codec.js';
import { ringWireBytes, type GradientReducer, type ReduceStats } from './gradient-reducer.js';

/**
 * `--compress fp16`: half the bytes on the wire, sums still accumulated in float32. Error feedback:
 * this rank's own contribution is rounded to half precision before it leaves, and what the rounding
 * dropped is added to the next step's gradient instead of being lost. (The partial sums forwarded
 * around the ring are rounded again at each hop; that error is ~2⁻¹¹ relative per hop and is not
 * fed back, as in NCCL/Horovod fp16 compression.)
 */
export class Fp16Reducer implements GradientReducer {
  readonly name = 'fp16';
  readonly bucketed = true;
  private readonly codec = new Fp16Codec();
  private residual: Float32Array | undefined;

  async reduce(buffer: Float32Array, region: Region, ring: RingCollective): Promise<ReduceStats> {
    if (ring.worldSize === 1) return { wireBytes: 0, fp32Bytes: 0 };
    if (!this.residual || this.residual.length !== buffer.length) this.residual = new Float32Array(buffer.length);
    const values = buffer.subarray(region.start, region.end);
    const residual = this.residual.subarray(region.start, region.end);
    // values += residual; residual = values − half(values); values = half(values)
    for (let i = 0; i < values.length; i++) values[i] = values[i]! + residual[i]!;
    residual.set(values);
    this.codec.roundTrip(values);
    for (let i = 0; i < values.length; i++) residual[i] = residual[i]! - values[i]!;
    await ring.allReduce(values, { op: 'sum', codec: this.codec });
    const elements = region.end - region.start;
    return { wireBytes: ringWireBytes(elements, 2, ring.worldSize), fp32Bytes: ringWireBytes(elements, 4, ring.worldSize) };
  }
}
