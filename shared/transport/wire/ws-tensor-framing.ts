import { TENSOR_HEADER_BYTES, tensorPayloadBytes, writeTensorHeader, type TensorHeader } from './tensor-header.js';

/**
 * The WebSocket framing in front of a tensor payload, built in one buffer so a tensor frame leaves in
 * one writev of two buffers (this prefix + the caller's payload) instead of four writes through ws's
 * sender. On the wire it is exactly what ws would send: two fragments of one binary message,
 *   [FIN=0 binary, len 32, (zero mask)] [32-byte tensor header] [FIN=1 continuation, len N, (zero mask)]
 * followed by the N payload bytes. Clients must mask (RFC 6455 §5.3); an all-zero key leaves the
 * payload unchanged, so it is written straight from the caller's memory.
 */
export function encodeTensorFramePrefix(header: TensorHeader, version: number, masked: boolean): Buffer {
  const payloadLength = tensorPayloadBytes(header);
  const maskBytes = masked ? 4 : 0;
  const lengthBytes = payloadLength < 126 ? 0 : payloadLength < 65536 ? 2 : 8;
  const first = 2 + maskBytes + TENSOR_HEADER_BYTES;
  const prefix = Buffer.allocUnsafe(first + 2 + lengthBytes + maskBytes);
  prefix[0] = 0x02; // FIN=0, opcode binary
  prefix[1] = (masked ? 0x80 : 0) | TENSOR_HEADER_BYTES;
  if (masked) prefix.writeUInt32BE(0, 2);
  writeTensorHeader(prefix, 2 + maskBytes, header, version);
  let at = first;
  prefix[at++] = 0x80; // FIN=1, opcode continuation
  if (lengthBytes === 0) {
    prefix[at++] = (masked ? 0x80 : 0) | payloadLength;
  } else if (lengthBytes === 2) {
    prefix[at++] = (masked ? 0x80 : 0) | 126;
    prefix.writeUInt16BE(payloadLength, at);
    at += 2;
  } else {
    prefix[at++] = (masked ? 0x80 : 0) | 127;
    prefix.writeUInt32BE(Math.floor(payloadLength / 2 ** 32), at);
    prefix.writeUInt32BE(payloadLength >>> 0, at + 4);
    at += 8;
  }
  if (masked) prefix.writeUInt32BE(0, at);
  return prefix;
}
