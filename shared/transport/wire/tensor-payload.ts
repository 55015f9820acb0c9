import { TransportError } from '../errors.js';
import { DTYPES, type TensorArray } from './dtype.js';
import type { TensorHeader } from './tensor-header.js';

/**
 * A typed view over received payload bytes. ws hands us large frames in their own buffer at offset 0,
 * but small frames are slices of the socket's read chunk at any offset: only those get copied, since
 * a Float32Array/Int32Array cannot start at an unaligned byte.
 */
export function viewPayload(header: TensorHeader, payload: Uint8Array): TensorArray {
  const info = DTYPES[header.dtype];
  if (payload.byteOffset % info.bytesPerElement === 0) {
    return info.view(payload.buffer, payload.byteOffset, header.length);
  }
  const aligned = new Uint8Array(payload.length);
  aligned.set(payload);
  return info.view(aligned.buffer, 0, header.length);
}

/**
 * Copies the payload into the caller's reusable tensor at header.offset, so hot paths allocate
 * nothing per frame. Returns the part of `into` that was written.
 */
export function copyPayloadInto<T extends TensorArray>(header: TensorHeader, payload: Uint8Array, into: T): T {
  checkReceiveTarget(header, into);
  const target = new Uint8Array(into.buffer, into.byteOffset + header.offset * into.BYTES_PER_ELEMENT, payload.length);
  target.set(payload);
  return into.subarray(header.offset, header.offset + header.length) as T;
}

export function checkReceiveTarget(header: TensorHeader, into: TensorArray): void {
  const info = DTYPES[header.dtype];
  if (!info.matches(into)) {
    throw new TransportError('usage', `received a ${header.dtype} tensor frame but the receive buffer is a ${into.constructor.name}`);
  }
  if (header.offset + header.length > into.length) {
    throw new TransportError(
      'usage',
      `receive buffer of ${into.length} elements is too small for tensor frame [${header.offset}, ${header.offset + header.length}) (totalLength ${header.totalLength})`,
    );
  }
}
