import { Prng } from '../../random/prng.js';
import { sampleSeed } from './transform.js';

/**
 * Shard and shuffle act on sample *indices* only, never on the data, so an epoch's whole order
 * costs a few milliseconds to compute — which is what makes any position resumable without
 * storing a shuffle buffer: the buffer's state at (epoch, index) is a pure function of the seed.
 */
export type IndexStage =
  | { kind: 'shard'; rank: number; world: number; equalSize: boolean }
  | { kind: 'shuffle'; bufferSize: number; seed: number };

/** The order in which an epoch visits the source's samples, after every index stage. */
export function epochIndexOrder(sourceSize: number, stages: readonly IndexStage[], epoch: number): Uint32Array {
  let order: Uint32Array = new Uint32Array(sourceSize);
  for (let i = 0; i < sourceSize; i++) order[i] = i;
  for (const stage of stages) order = stage.kind === 'shard' ? shardOf(order, stage) : bufferedShuffle(order, stage.bufferSize, stage.seed, epoch);
  return order;
}

/** Number of samples an epoch visits after the index stages (no need to build the order). */
export function epochLength(sourceSize: number, stages: readonly IndexStage[]): number {
  let length = sourceSize;
  for (const stage of stages) if (stage.kind === 'shard') length = shardLength(length, stage);
  return length;
}

/**
 * Strided split: rank r takes positions r, r+world, r+2·world… of the incoming order. The shards
 * are disjoint and together cover every sample once. Sizes differ by at most one; `equalSize`
 * drops that one extra sample so every rank runs the same number of steps (ring all-reduce needs it).
 */
export function shardOf(order: Uint32Array, stage: { rank: number; world: number; equalSize: boolean }): Uint32Array {
  const length = shardLength(order.length, stage);
  const shard = new Uint32Array(length);
  for (let i = 0; i < length; i++) shard[i] = order[stage.rank + i * stage.world]!;
  return shard;
}

function shardLength(total: number, { rank, world, equalSize }: { rank: number; world: number; equalSize: boolean }): number {
  return equalSize ? Math.floor(total / world) : Math.floor(total / world) + (rank < total % world ? 1 : 0);
}

/**
 * tf.data's shuffle: keep `bufferSize` items, emit a random one and refill its slot from the
 * input. A buffer at least as large as the input gives a uniform permutation. Reshuffles every
 * epoch, deterministically from (seed, epoch).
 */
export function bufferedShuffle(input: Uint32Array, bufferSize: number, seed: number, epoch: number): Uint32Array {
  const random = new Prng(sampleSeed(seed, 0x5eed, epoch, 0));
  const size = Math.min(bufferSize, input.length);
  const buffer = input.slice(0, size);
  const output = new Uint32Array(input.length);
  let next = size;
  let filled = size;
  for (let out = 0; out < input.length; out++) {
    const pick = random.nextInt(filled);
    output[out] = buffer[pick]!;
    if (next < input.length) buffer[pick] = input[next++]!;
    else buffer[pick] = buffer[--filled]!;
  }
  return output;
}

export function validateIndexStage(stage: IndexStage): void {
  if (stage.kind === 'shard') {
    const { rank, world } = stage;
    if (!Number.isInteger(world) || world < 1) throw new Error(`shard(rank, world): world must be a positive integer, got ${world}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new Error(`shard(rank, world): rank must be an integer in 0..${world - 1}, got ${rank}`);
  } else {
    if (!Number.isInteger(stage.bufferSize) || stage.bufferSize < 1) throw new Error(`shuffle(bufferSize, seed): bufferSize must be a positive integer, got ${stage.bufferSize}`);
    if (!Number.isInteger(stage.seed)) throw new Error(`shuffle(bufferSize, seed): seed must be an integer, got ${stage.seed}`);
  }
}
