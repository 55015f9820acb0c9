import type { Region } from '../allreduce/partition.js';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { Fp16Codec } from './fp16-codec.js';
import { ringWireBytes, type GradientReducer, type ReduceStats } from './gradient-reducer.js';

/**
 * `--compress fp16`: half the bytes on the wire, sums still accumulated in float32. Error feedback:
 * whatever half-precision rounding drops anywhere in the ring — this rank's own contribution, the
 * partial sums it forwards, the finished segment it shares — is kept in this rank's residual and
 * added to its next gradient, so over steps the rounding errors cancel instead of accumulating.
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
    // Last step's losses go back in; the ring records this step's (starting from zero).
    for (let i = 0; i < values.length; i++) values[i] = values[i]! + residual[i]!;
    residual.fill(0);
    await ring.allReduce(values, { op: 'sum', codec: this.codec, residual });
    const elements = region.end - region.start;
    return { wireBytes: ringWireBytes(elements, 2, ring.worldSize), fp32Bytes: ringWireBytes(elements, 4, ring.worldSize) };
  }
}
