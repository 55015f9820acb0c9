/** WebSocket close codes we use (4000–4999 is the application range). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  /** No close frame arrived: the TCP connection dropped (peer killed, network gone). */
  abnormal: 1006,
  refused: 4001,
  heartbeatTimeout: 4002,
  protocolViolation: 4003,
  authTimeout: 4004,
} as const;

/** Why a link ended, as reported by the `close` event and in the error of every pending wait. */
export interface LinkCloseInfo {
  code: number;
  /** Human-readable, e.g. "heartbeat timeout: nothing heard from peer for 5000 ms". */
  reason: string;
  /** True when the peer closed the link (or the connection dropped); false when this side did. */
  byPeer: boolean;
}

/** Close reasons travel in the WebSocket close frame, which allows 123 bytes. */
export function truncateCloseReason(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.length <= 123) return reason;
  return bytes.subarray(0, 120).toString('utf8').replace(/\uFFFD*$/, '') + '...';
}
