/**
 * Framing of the ring's TCP data plane: a 16-byte header, then the payload.
 *   0  u32 magic 'RPDF'   catches a stream that lost its framing
 *   4  u32 op             collective number
 *   8  u32 frame          frame index within the collective
 *   12 u32 length         payload bytes
 * Little-endian. The connection itself is authenticated once, when it opens (see data-plane-setup.ts).
 */
export const DATA_FRAME_HEADER_BYTES = 16;
export const DATA_FRAME_MAGIC = 0x46445052; // "RPDF" read as little-endian u32

export interface DataFrameHeader {
  op: number;
  frame: number;
  length: number;
}

export function encodeDataFrameHeader(header: DataFrameHeader): Buffer {
  const bytes = Buffer.allocUnsafe(DATA_FRAME_HEADER_BYTES);
  bytes.writeUInt32LE(DATA_FRAME_MAGIC, 0);
  bytes.writeUInt32LE(header.op >>> 0, 4);
  bytes.writeUInt32LE(header.frame >>> 0, 8);
  bytes.writeUInt32LE(header.length >>> 0, 12);
  return bytes;
}

/** Parses a header, or returns why it is not one. */
export function decodeDataFrameHeader(bytes: Uint8Array): DataFrameHeader | string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, DATA_FRAME_HEADER_BYTES);
  const magic = view.getUint32(0, true);
  if (magic !== DATA_FRAME_MAGIC) return `bad frame magic 0x${magic.toString(16).padStart(8, '0')} (stream out of sync)`;
  return { op: view.getUint32(4, true), frame: view.getUint32(8, true), length: view.getUint32(12, true) };
}
