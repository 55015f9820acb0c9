import { createHash } from 'node:crypto';
import type { RingCollective } from '../../allreduce/ring-collective.js';

/** 16-bit pieces of a weight digest sent per replica: a float32 sum holds each exactly. */
const DIGEST_PIECES = 4;

/**
 * Checks that every replica of a stage holds the same weights (they should, bit for bit: each
 * applies the same averaged gradients to the same starting point). Each replica puts a digest of
 * its weights in its own slots of a small buffer and the ring sums it, so everyone sees every
 * digest: one tiny all-reduce. Returns the replicas whose weights differ from this one's.
 */
export async function replicasDisagreeing(collective: RingCollective, replica: number, weights: readonly Float32Array[]): Promise<number[]> {
  const hash = createHash('sha256');
  for (const values of weights) hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  const digest = hash.digest();
  const replicas = collective.worldSize;
  const pieces = new Float32Array(replicas * DIGEST_PIECES);
  for (let i = 0; i < DIGEST_PIECES; i++) pieces[replica * DIGEST_PIECES + i] = digest.readUInt16BE(i * 2);
  await collective.allReduce(pieces);
  const own = pieces.subarray(replica * DIGEST_PIECES, (replica + 1) * DIGEST_PIECES);
  const differing: number[] = [];
  for (let other = 0; other < replicas; other++) {
    const theirs = pieces.subarray(other * DIGEST_PIECES, (other + 1) * DIGEST_PIECES);
    if (theirs.some((value, i) => value !== own[i])) differing.push(other);
  }
  return differing;
}
