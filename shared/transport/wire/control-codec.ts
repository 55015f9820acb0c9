import { Packr } from 'msgpackr';
import { protocolError } from '../errors.js';
import { FRAME_PREFIX_BYTES, writeFramePrefix, type FrameKind } from './frame-prefix.js';

/**
 * msgpack for control and session messages. Records/structures are off: they make the decoder keep
 * state across messages, which a hostile peer could grow. Validation of the decoded value is the
 * caller's job (see messages/).
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** Encodes `message` as a complete frame: 4-byte prefix + msgpack body, in a buffer of its own. */
export function encodeControlFrame(kind: FrameKind, version: number, message: unknown, maxBytes: number): Buffer {
  // pack() returns a view into a buffer msgpackr reuses on the next call: copy it out right away.
  const body = packr.pack(message);
  if (body.length > maxBytes) {
    throw protocolError(`control message of ${body.length} bytes exceeds maxControlBytes ${maxBytes}`);
  }
  const frame = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + body.length);
  writeFramePrefix(frame, kind, version);
  frame.set(body, FRAME_PREFIX_BYTES);
  return frame;
}

/** Decodes the msgpack body after the prefix; malformed, truncated or trailing bytes are protocol errors. */
export function decodeControlBody(frame: Uint8Array, maxBytes: number): unknown {
  const bodyBytes = frame.length - FRAME_PREFIX_BYTES;
  if (bodyBytes > maxBytes) throw protocolError(`control message of ${bodyBytes} bytes exceeds maxControlBytes ${maxBytes}`);
  if (bodyBytes <= 0) throw protocolError('control frame has no body');
  try {
    return packr.unpack(frame.subarray(FRAME_PREFIX_BYTES));
  } catch (error) {
    throw protocolError(`malformed msgpack in control frame: ${(error as Error).message.slice(0, 120)}`);
  }
}
