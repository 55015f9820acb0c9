import { protocolError } from '../errors.js';
import { DTYPES, dtypeFromCode, type DType } from './dtype.js';
import { FRAME_PREFIX_BYTES, FrameKind, writeFramePrefix } from './frame-prefix.js';

/**
 * Fixed 32-byte header in front of every tensor payload (little-endian):
 *   0   prefix 'R' 'P' 'T' version
 *   4   u32 epoch        membership epoch the data belongs to (stale epochs are easy to drop)
 *   8   u32 step         training step / micro-batch
 *   12  u32 tensorId     which tensor or chunk
 *   16  u32 offset       first element of this frame within the whole tensor
 *   20  u32 length       elements in this frame (payload bytes = length × bytes per element)
 *   24  u32 totalLength  elements in the whole tensor (offset + length ≤ totalLength)
 *   28  u8  dtype        see DTYPES
 *   29  3 bytes reserved, must be zero
 * 32 bytes keeps the payload 4-byte aligned when header and payload share a buffer.
 */
export const TENSOR_HEADER_BYTES = 32;

export interface TensorHeader {
  epoch: number;
  step: number;
  tensorId: number;
  offset: number;
  length: number;
  totalLength: number;
  dtype: DType;
}

const U32_MAX = 0xffff_ffff;

function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= U32_MAX;
}

/** Checks the header fields against each other; used on both the send and the receive side. */
export function checkTensorHeader(header: TensorHeader): string | undefined {
  for (const field of ['epoch', 'step', 'tensorId', 'offset', 'length', 'totalLength'] as const) {
    if (!isU32(header[field])) return `tensor header field ${field} must be an unsigned 32-bit integer, got ${header[field]}`;
  }
  if (header.offset + header.length > header.totalLength) {
    return `tensor frame covers elements [${header.offset}, ${header.offset + header.length}) beyond totalLength ${header.totalLength}`;
  }
  return undefined;
}

export function encodeTensorHeader(header: TensorHeader, version: number): Buffer {
  const bytes = Buffer.allocUnsafe(TENSOR_HEADER_BYTES);
  writeTensorHeader(bytes, 0, header, version);
  return bytes;
}

/** Writes the 32-byte header at `at` (lets the sender build WebSocket framing and header in one buffer). */
export function writeTensorHeader(target: Buffer, at: number, header: TensorHeader, version: number): void {
  writeFramePrefix(target, FrameKind.tensor, version, at);
  target.writeUInt32LE(header.epoch, at + 4);
  target.writeUInt32LE(header.step, at + 8);
  target.writeUInt32LE(header.tensorId, at + 12);
  target.writeUInt32LE(header.offset, at + 16);
  target.writeUInt32LE(header.length, at + 20);
  target.writeUInt32LE(header.totalLength, at + 24);
  target[at + 28] = DTYPES[header.dtype].code;
  target[at + 29] = 0;
  target[at + 30] = 0;
  target[at + 31] = 0;
}

/**
 * Parses and validates a header whose prefix was already checked: known dtype, zero reserved bytes,
 * offset + length ≤ totalLength, payload within maxTensorBytes. The payload length itself is
 * checked with checkPayloadLength once the whole frame has arrived.
 */
export function parseTensorHeader(bytes: Uint8Array, maxTensorBytes: number): TensorHeader {
  if (bytes.length < TENSOR_HEADER_BYTES) {
    throw protocolError(`tensor frame of ${bytes.length} bytes is shorter than the ${TENSOR_HEADER_BYTES}-byte header`);
  }
  if (bytes[29] !== 0 || bytes[30] !== 0 || bytes[31] !== 0) throw protocolError('tensor header reserved bytes are not zero');
  const header: TensorHeader = {
    epoch: readU32LE(bytes, 4),
    step: readU32LE(bytes, 8),
    tensorId: readU32LE(bytes, 12),
    offset: readU32LE(bytes, 16),
    length: readU32LE(bytes, 20),
    totalLength: readU32LE(bytes, 24),
    dtype: dtypeFromCode(bytes[28] as number),
  };
  const problem = checkTensorHeader(header);
  if (problem !== undefined) throw protocolError(problem);
  const payloadBytes = tensorPayloadBytes(header);
  if (payloadBytes > maxTensorBytes) {
    throw protocolError(`tensor payload of ${payloadBytes} bytes exceeds maxTensorBytes ${maxTensorBytes}`);
  }
  return header;
}

/** Little-endian u32 from any Uint8Array (no DataView allocated per header on the receive path). */
function readU32LE(bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16)) + (bytes[at + 3] as number) * 0x100_0000;
}

export function tensorPayloadBytes(header: TensorHeader): number {
  return header.length * DTYPES[header.dtype].bytesPerElement;
}

/** The payload that arrived must be exactly what the header announced. */
export function checkPayloadLength(header: TensorHeader, payloadBytes: number): void {
  const expectedBytes = tensorPayloadBytes(header);
  if (expectedBytes !== payloadBytes) {
    throw protocolError(
      `tensor header says ${header.length} ${header.dtype} elements (${expectedBytes} bytes) but the payload has ${payloadBytes} bytes`,
    );
  }
}

/** Header and complete payload at once (parseTensorHeader + checkPayloadLength). */
export function decodeTensorHeader(bytes: Uint8Array, payloadBytes: number, maxTensorBytes: number): TensorHeader {
  const header = parseTensorHeader(bytes, maxTensorBytes);
  checkPayloadLength(header, payloadBytes);
  return header;
}

export { FRAME_PREFIX_BYTES };
