import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { PROOF_LABEL } from '../constants.js';
import type { Introduction } from '../messages/session-messages.js';

export type ProofRole = 'dialer' | 'listener';

export const NONCE_BYTES = 32;

export function newNonce(): Uint8Array {
  return randomBytes(NONCE_BYTES);
}

/**
 * HMAC-SHA256(secret, transcript): the transcript binds both nonces (freshness, no replay), the
 * cluster, the protocol version, both node identities and roles, and which side is proving
 * (so a listener's proof can never be reflected back as a dialer's). Fields are length-prefixed so
 * no two different transcripts serialize to the same bytes.
 */
export function computeProof(secret: Uint8Array, prover: ProofRole, dialer: Introduction, listener: Introduction): Buffer {
  const hmac = createHmac('sha256', secret);
  const fields: (string | Uint8Array)[] = [
    PROOF_LABEL,
    prover,
    String(dialer.protocolVersion),
    dialer.cluster,
    dialer.nodeId,
    dialer.role,
    dialer.nonce,
    listener.nodeId,
    listener.role,
    listener.nonce,
  ];
  for (const field of fields) {
    const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : field;
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(bytes.length, 0);
    hmac.update(length);
    hmac.update(bytes);
  }
  return hmac.digest();
}

/** Constant-time comparison, so the time to reject does not reveal how many bytes matched. */
export function proofMatches(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}
