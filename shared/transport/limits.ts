import { TransportError } from './errors.js';
import { FRAME_PREFIX_BYTES } from './wire/frame-prefix.js';
import { TENSOR_HEADER_BYTES } from './wire/tensor-header.js';

/**
 * Every bound the transport enforces, in one place. All of them exist because a peer (buggy or
 * hostile) could otherwise make us buffer, wait or accept without end.
 */
export interface TransportLimits {
  /** Largest tensor payload in one frame (bytes). Split bigger tensors into chunks (header.offset). */
  maxTensorBytes: number;
  /** Largest encoded control message (bytes). */
  maxControlBytes: number;
  /**
   * Tensor bytes a peer may have in flight towards us before we hand it credit back (flow control).
   * Bounds what an unread link can make us hold in memory. At least 2 × maxTensorBytes.
   */
  receiveWindowBytes: number;
  /** A send waits while the socket already holds more than this many unsent bytes. */
  sendHighWaterBytes: number;
  /** How often each side pings the other. */
  heartbeatIntervalMs: number;
  /** A peer we hear nothing from (no data, no pong) for this long is declared dead. */
  heartbeatTimeoutMs: number;
  /** The whole handshake (TCP accept to authenticated) must finish within this time. */
  authTimeoutMs: number;
  /** Listener: connections still handshaking beyond this count are dropped on arrival. */
  maxPendingConnections: number;
  /** Bytes an unauthenticated peer may send before the handshake completes. */
  maxPreAuthBytes: number;
  /** Control messages received but not yet taken by the application, per link. */
  maxQueuedControlMessages: number;
  /** Default timeout of nextControl / nextTensor when the caller gives none. */
  defaultWaitTimeoutMs: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<TransportLimits> = Object.freeze({
  maxTensorBytes: 16 * MiB,
  maxControlBytes: 1 * MiB,
  receiveWindowBytes: 32 * MiB,
  sendHighWaterBytes: 8 * MiB,
  heartbeatIntervalMs: 1_000,
  heartbeatTimeoutMs: 5_000,
  authTimeoutMs: 5_000,
  maxPendingConnections: 32,
  maxPreAuthBytes: 64 * 1024,
  maxQueuedControlMessages: 1_024,
  defaultWaitTimeoutMs: 30_000,
});

/** Fills in defaults and rejects combinations that cannot work, with a message saying which. */
export function resolveLimits(overrides: Partial<TransportLimits> = {}): TransportLimits {
  const limits: TransportLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(overrides) as [keyof TransportLimits, unknown][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LIMITS)) throw new TransportError('config', `unknown transport limit '${String(key)}'`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || !Number.isInteger(value)) {
      throw new TransportError('config', `transport limit ${key} must be a positive integer, got ${String(value)}`);
    }
    limits[key] = value;
  }
  if (limits.maxTensorBytes % 8 !== 0) {
    throw new TransportError('config', `maxTensorBytes (${limits.maxTensorBytes}) must be a multiple of 8 bytes`);
  }
  if (limits.receiveWindowBytes < 2 * limits.maxTensorBytes) {
    throw new TransportError(
      'config',
      `receiveWindowBytes (${limits.receiveWindowBytes}) must be at least 2 × maxTensorBytes (${limits.maxTensorBytes}) so a full frame always fits while another is being read`,
    );
  }
  if (limits.heartbeatTimeoutMs <= limits.heartbeatIntervalMs) {
    throw new TransportError(
      'config',
      `heartbeatTimeoutMs (${limits.heartbeatTimeoutMs}) must be longer than heartbeatIntervalMs (${limits.heartbeatIntervalMs})`,
    );
  }
  return limits;
}

/** The largest WebSocket message a link accepts (its maxPayload): a full tensor or control frame. */
export function maxMessageBytes(limits: TransportLimits): number {
  return Math.max(limits.maxTensorBytes + TENSOR_HEADER_BYTES, limits.maxControlBytes + FRAME_PREFIX_BYTES);
}
