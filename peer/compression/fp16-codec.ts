import type { WireCodec } from '../allreduce/wire-codec.js';
import { AlignedView } from '../allreduce/wire-codec.js';
import { encodeHalf, HALF_TO_FLOAT, halfBitsFromFloatBits } from './half-float.js';

/**
 * `--compress fp16`: chunks travel as IEEE half floats (half the bytes), and are decoded and added in
 * float32 on arrival, so only the wire is lossy, not the accumulation. Values beyond ±65504 saturate
 * to ±Infinity, which is why gradients are not pre-scaled here: they are far from that range.
 */
export class Fp16Codec implements WireCodec {
  readonly name = 'fp16';
  readonly needsScratch = true;
  readonly rawFloat32 = false;
  private readonly aligned = new AlignedView();

  encodedBytes(elements: number): number {
    return elements * 2;
  }

  encode(values: Float32Array, scratch: Uint8Array): Uint8Array {
    const bytes = scratch.subarray(0, values.length * 2);
    encodeHalf(values, new Uint16Array(bytes.buffer, bytes.byteOffset, values.length));
    return bytes;
  }

  decodeAdd(bytes: Uint8Array, into: Float32Array): void {
    const halves = this.aligned.uint16(bytes);
    const n = halves.length;
    for (let i = 0; i < n; i++) into[i] = into[i]! + HALF_TO_FLOAT[halves[i]!]!;
  }

  decodeCopy(bytes: Uint8Array, into: Float32Array): void {
    const halves = this.aligned.uint16(bytes);
    const n = halves.length;
    for (let i = 0; i < n; i++) into[i] = HALF_TO_FLOAT[halves[i]!]!;
  }

  roundTrip(values: Float32Array): void {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    const n = values.length;
    for (let i = 0; i < n; i++) values[i] = HALF_TO_FLOAT[halfBitsFromFloatBits(bits[i]!)]!;
  }
}
