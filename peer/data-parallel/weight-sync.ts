import * as tf from '@tensorflow/tfjs';
import { allocateRingBuffer, type RingCollective } from '../allreduce/ring-collective.js';

/** Raised when replicas that should be bit-identical are not: training must stop, not drift. */
export class ReplicaDivergenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplicaDivergenceError';
  }
}

/** Every weight of the model (trainable or not), in model order, into one buffer. */
function readWeights(model: tf.LayersModel, into?: Float32Array): Float32Array {
  const total = model.weights.reduce((sum, w) => sum + w.read().size, 0);
  const buffer = into && into.length === total ? into : allocateRingBuffer(total);
  let offset = 0;
  for (const weight of model.weights) {
    const values = weight.read().dataSync() as Float32Array;
    buffer.set(values, offset);
    offset += values.length;
  }
  return buffer;
}

/** Makes every replica start from rank `root`'s weights, bit for bit. */
export async function broadcastWeights(model: tf.LayersModel, ring: RingCollective, root = 0): Promise<void> {
  if (ring.worldSize === 1) return;
  const buffer = readWeights(model);
  await ring.broadcast(buffer, root);
  let offset = 0;
  for (const weight of model.weights) {
    const { size, shape } = weight.read();
    // A copy: the variable must not alias a buffer we might reuse.
    const value = tf.tensor(buffer.slice(offset, offset + size), shape, 'float32');
    weight.write(value); // assign shares the data (ref-counted), so the tensor itself can go
    value.dispose();
    offset += size;
  }
}

/**
 * A 64-bit hash of the weights' bits (two independent 32-bit multiply-xorshift lanes over the
 * float words). Equal weights hash equal; any flipped bit almost surely does not.
 */
export function hashWeights(values: Float32Array): [number, number] {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let a = 0x811c9dc5;
  let b = 0x9e3779b9 ^ values.length;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    a = Math.imul(a ^ w, 0x01000193);
    b = Math.imul(b ^ ((w >>> 16) | (w << 16)), 0x85ebca6b);
    b ^= b >>> 13;
  }
  return [a >>> 0, b >>> 0];
}

function formatHash(hash: readonly number[]): string {
  return hash.map((h) => h.toString(16).padStart(8, '0')).join('');
}

/**
 * Compares the replicas' weight hashes (all-gathered) and throws ReplicaDivergenceError naming the
 * ranks that differ from rank 0. Hashes travel as 16-bit halves in floats, which floats hold exactly.
 */
export class ReplicaCheck {
  private weights: Float32Array | undefined;

  constructor(private readonly ring: RingCollective) {}

  async verify(model: tf.LayersModel, step: number): Promise<string> {
    this.weights = readWeights(model, this.weights);
    const hash = hashWeights(this.weights);
    const n = this.ring.worldSize;
    const gathered = new Float32Array(4 * n);
    gathered.set([hash[0]! >>> 16, hash[0]! & 0xffff, hash[1]! >>> 16, hash[1]! & 0xffff], 4 * this.ring.rank);
    await this.ring.allGather(gathered);
    const hashes = Array.from({ length: n }, (_, r) => [gathered[4 * r]! * 65536 + gathered[4 * r + 1]!, gathered[4 * r + 2]! * 65536 + gathered[4 * r + 3]!]);
    const reference = formatHash(hashes[0]!);
    const differing = hashes.map((h, r) => ({ rank: r, hash: formatHash(h) })).filter((h) => h.hash !== reference);
    if (differing.length > 0) {
      throw new ReplicaDivergenceError(
        `replicas diverged by step ${step}: weights of rank ${differing.map((d) => `${d.rank} (hash ${d.hash})`).join(', ')} differ from rank 0 (hash ${reference}). ` +
          'Every peer must run the same tensor backend and ringpipe version; stopping rather than training different models.',
      );
    }
    return reference;
  }
}

/**
 * Checks that every replica runs the same optimizer settings (all-gathered as float32) and throws
 * ReplicaDivergenceError naming the ranks that differ from rank 0. Needed with the sharded update
 * (sharded-adam-exchange.ts): there each rank updates only its segment and the all-gather hands
 * everyone the same weights, so a replica with, say, another learning rate would never show up in
 * the weight hashes; it would silently train its segment differently.
 */
export async function verifySameSettings(ring: RingCollective, settings: Record<string, number>): Promise<void> {
  const names = Object.keys(settings);
  const n = ring.worldSize;
  const k = names.length;
  const gathered = new Float32Array(k * n);
  gathered.set(names.map((name) => settings[name]!), k * ring.rank);
  await ring.allGather(gathered);
  const describe = (r: number) => names.map((name, i) => `${name} ${Number(gathered[k * r + i]!.toPrecision(7))}`).join(', ');
  const differing = Array.from({ length: n }, (_, r) => r).filter((r) => names.some((_, i) => !Object.is(gathered[k * r + i], gathered[i])));
  if (differing.length > 0) {
    throw new ReplicaDivergenceError(
      `replicas run different optimizer settings: rank ${differing.map((r) => `${r} (${describe(r)})`).join(', ')} differ from rank 0 (${describe(0)}). ` +
        'Every peer must train the same job; stopping rather than training different models.',
    );
  }
}
