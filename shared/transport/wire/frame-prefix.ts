import { protocolError } from '../errors.js';

/**
 * Every frame we send is one binary WebSocket message that starts with a 4-byte prefix:
 *   byte 0–1  'R' 'P'     (magic: this is ringpipe traffic)
 *   byte 2    kind        'S' session (handshake, credit), 'C' application control, 'T' tensor
 *   byte 3    protocol version of the sender
 * The prefix is part of the tensor header, which keeps that header a multiple of 4 bytes.
 */
export const FRAME_PREFIX_BYTES = 4;

export const FrameKind = {
  session: 0x53, // 'S'
  control: 0x43, // 'C'
  tensor: 0x54, // 'T'
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const MAGIC_0 = 0x52; // 'R'
const MAGIC_1 = 0x50; // 'P'

export interface FramePrefix {
  kind: FrameKind;
  version: number;
}

export function writeFramePrefix(target: Uint8Array, kind: FrameKind, version: number, at = 0): void {
  target[at] = MAGIC_0;
  target[at + 1] = MAGIC_1;
  target[at + 2] = kind;
  target[at + 3] = version;
}

export function readFramePrefix(frame: Uint8Array): FramePrefix {
  if (frame.length < FRAME_PREFIX_BYTES) {
    throw protocolError(`frame of ${frame.length} bytes is shorter than the ${FRAME_PREFIX_BYTES}-byte prefix`);
  }
  if (frame[0] !== MAGIC_0 || frame[1] !== MAGIC_1) {
    throw protocolError('frame does not start with the ringpipe magic bytes "RP" (not ringpipe traffic)');
  }
  const kind = frame[2];
  if (kind !== FrameKind.session && kind !== FrameKind.control && kind !== FrameKind.tensor) {
    throw protocolError(`unknown frame kind 0x${(kind ?? 0).toString(16)}`);
  }
  return { kind, version: frame[3] ?? 0 };
}
