/**
 * Why a transport operation failed, so callers can branch without parsing messages:
 * - `refused`:  the handshake was refused (wrong secret, cluster or protocol version), by either side
 * - `timeout`:  a wait (connect, next message, next tensor) ran out of time
 * - `closed`:   the link closed (peer left, heartbeat timeout, protocol violation) while waiting
 * - `protocol`: bytes that break the protocol (malformed frame, unknown message type, bad lengths)
 * - `config`:   a setting that cannot work (no secret on a non-loopback address, bad limits)
 * - `connect`:  the TCP/WebSocket connection itself could not be made
 * - `usage`:    the caller passed something invalid (wrong dtype, buffer too small)
 */
export type TransportErrorCode = 'refused' | 'timeout' | 'closed' | 'protocol' | 'config' | 'connect' | 'usage';

export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A peer broke the protocol; the message says what it sent, for the log and the close reason. */
export function protocolError(message: string): TransportError {
  return new TransportError('protocol', message);
}
