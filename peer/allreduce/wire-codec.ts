/**
 * How a chunk of float32 values travels: as is, or compressed (see peer/compression/). The reduction
 * always happens in float32 on the receiving side; only the bytes on the wire change.
 */
export interface WireCodec {
  readonly name: string;
  /** False when `encode` returns a view over the values themselves (no scratch needed). */
  readonly needsScratch: boolean;
  /** True when the wire bytes are the float32 bytes themselves (a frame may be read in place). */
  readonly rawFloat32: boolean;
  /** Bytes on the wire for `elements` values. */
  encodedBytes(elements: number): number;
  /** The bytes to send for `values`: a view over them, or written into `scratch` (≥ encodedBytes). */
  encode(values: Float32Array, scratch: Uint8Array): Uint8Array;
  /** into[i] += decoded[i]. `bytes` may be at any byte offset. */
  decodeAdd(bytes: Uint8Array, into: Float32Array): void;
  /** into[i] = decoded[i]. */
  decodeCopy(bytes: Uint8Array, into: Float32Array): void;
  /**
   * Replaces values with exactly what a receiver would decode from them. The owner of a reduced
   * segment applies it before sharing the segment, so every replica ends bit-identical.
   */
  roundTrip(values: Float32Array): void;
}

/**
 * A typed-array view over received bytes, copying into a reused aligned buffer only when the bytes
 * sit at an offset the element type cannot start at.
 */
export class AlignedView {
  private scratch = new ArrayBuffer(0);

  float32(bytes: Uint8Array): Float32Array {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
    return new Float32Array(this.copy(bytes), 0, bytes.byteLength >>> 2);
  }

  uint16(bytes: Uint8Array): Uint16Array {
    if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 1);
    return new Uint16Array(this.copy(bytes), 0, bytes.byteLength >>> 1);
  }

  private copy(bytes: Uint8Array): ArrayBuffer {
    if (this.scratch.byteLength < bytes.byteLength) this.scratch = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(this.scratch, 0, bytes.byteLength).set(bytes);
    return this.scratch;
  }
}
