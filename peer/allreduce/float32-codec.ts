import { addInto } from './reduce-kernels.js';
import { AlignedView, type WireCodec } from './wire-codec.js';

/** Uncompressed: sends straight from the caller's buffer, so a send copies nothing in JS. */
export class Float32Codec implements WireCodec {
  readonly name = 'fp32';
  readonly needsScratch = false;
  readonly rawFloat32 = true;
  private readonly aligned = new AlignedView();

  encodedBytes(elements: number): number {
    return elements * 4;
  }

  encode(values: Float32Array): Uint8Array {
    return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  }

  decodeAdd(bytes: Uint8Array, into: Float32Array): void {
    addInto(into, this.aligned.float32(bytes));
  }

  decodeCopy(bytes: Uint8Array, into: Float32Array): void {
    // Read in place by the channel (setFrameTargets): already there.
    if (bytes.buffer === into.buffer && bytes.byteOffset === into.byteOffset) return;
    // Byte copy: exact for every bit pattern, and memcpy speed.
    new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(bytes);
  }

  roundTrip(): void {}
}
