import { describe, expect, it } from 'vitest';
import { createLocalRing } from '../peer/allreduce/local-channel.js';
import { chunkOf, chunksPerSegment, segmentOf } from '../peer/allreduce/partition.js';
import { autoChunkBytes, RingCollective, type AllReduceOptions } from '../peer/allreduce/ring-collective.js';
import { RingError } from '../peer/allreduce/ring-errors.js';
import { ADD_KERNEL, addInto, addIntoJs } from '../peer/allreduce/reduce-kernels.js';
import { allocateRingBuffer } from '../peer/allreduce/ring-collective.js';
import { ringArena } from '../peer/allreduce/wasm-arena.js';
import { Fp16Codec } from '../peer/compression/fp16-codec.js';
import { Prng } from '../shared/random/prng.js';

/** A ring of `n` collectives in this process, over copying, misaligning, jittering channels. */
function localRing(n: number, chunkBytes: number, seed = 1, timeoutMs = 5_000): RingCollective[] {
  const prng = new Prng(seed);
  const channels = createLocalRing(n, { misalign: true, jitter: () => prng.nextInt(3) });
  return channels.map((channel, rank) => new RingCollective({ rank, worldSize: n, channel: n > 1 ? channel : undefined }, { chunkBytes, timeoutMs }));
}

/** Small integers: every summation order gives the exact same float32 result. */
function integerInputs(n: number, length: number, seed: number): Float32Array[] {
  const prng = new Prng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length }, () => prng.nextInt(2001) - 1000));
}

function randomInputs(n: number, length: number, seed: number): Float32Array[] {
  const prng = new Prng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length }, () => (prng.next() - 0.5) * 10));
}

function referenceSum(inputs: Float32Array[]): Float64Array {
  const sum = new Float64Array(inputs[0]!.length);
  for (const input of inputs) for (let i = 0; i < sum.length; i++) sum[i]! += input[i]!;
  return sum;
}

async function allReduceAll(ring: RingCollective[], buffers: Float32Array[], options: AllReduceOptions = {}): Promise<void> {
  await Promise.all(ring.map((member, rank) => member.allReduce(buffers[rank]!, options)));
}

function expectBitIdentical(buffers: Float32Array[]): void {
  const first = Buffer.from(buffers[0]!.buffer, buffers[0]!.byteOffset, buffers[0]!.byteLength);
  for (const other of buffers.slice(1)) expect(Buffer.compare(first, Buffer.from(other.buffer, other.byteOffset, other.byteLength))).toBe(0);
}

describe('partition', () => {
  it('covers every element exactly once for any length and rank count', () => {
    for (const n of [1, 2, 3, 5, 7]) {
      for (const length of [0, 1, 2, 3, 10, 101, 1000]) {
        for (const chunkElements of [1, 3, 64]) {
          const chunks = chunksPerSegment(length, n, chunkElements);
          const seen = new Uint8Array(length);
          for (let s = 0; s < n; s++) {
            const segment = segmentOf(length, n, s);
            expect(segment.end - segment.start).toBeGreaterThanOrEqual(Math.floor(length / n));
            expect(segment.end - segment.start).toBeLessThanOrEqual(Math.ceil(length / n));
            for (let c = 0; c < chunks; c++) {
              const chunk = chunkOf(segment, chunks, c);
              expect(chunk.end - chunk.start).toBeLessThanOrEqual(chunkElements);
              for (let i = chunk.start; i < chunk.end; i++) seen[i]!++;
            }
          }
          expect(seen.every((count) => count === 1)).toBe(true);
        }
      }
    }
  });
});

describe('add kernel', () => {
  it(`${ADD_KERNEL} add gives the same bits as the plain loop, for any length and offset`, () => {
    const prng = new Prng(17);
    for (const length of [0, 1, 3, 63, 64, 65, 16_383, 16_384, 16_385, 40_001]) {
      const backing = Float32Array.from({ length: length + 8 }, () => (prng.next() - 0.5) * 1e3);
      const src = Float32Array.from({ length: length + 8 }, () => (prng.next() - 0.5) * 1e-3).subarray(3, 3 + length);
      const a = backing.slice().subarray(1, 1 + length);
      const b = backing.slice().subarray(1, 1 + length);
      addInto(a, src);
      addIntoJs(b, src);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    }
  });
});

describe('ring arena', () => {
  it('adds in place between arena buffers, exactly as the JS loop, and keeps old buffers valid as it grows', () => {
    const arena = ringArena();
    expect(arena).toBeDefined();
    const a = allocateRingBuffer(100_003);
    const b = allocateRingBuffer(100_003);
    expect(arena!.holds(a) && arena!.holds(b)).toBe(true);
    const prng = new Prng(23);
    for (let i = 0; i < a.length; i++) {
      a[i] = prng.next() * 100;
      b[i] = prng.next();
    }
    const expected = a.slice();
    // Odd offsets and lengths: the SIMD part plus a scalar tail, never writing past the view.
    addIntoJs(expected.subarray(5, 100_001), b.subarray(7, 100_003));
    addInto(a.subarray(5, 100_001), b.subarray(7, 100_003));
    expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(expected.buffer))).toBe(true);
    // Growing the memory (a large allocation) must not detach or move earlier buffers.
    const before = a.slice();
    const large = allocateRingBuffer(8 << 20);
    large[large.length - 1] = 1;
    expect(arena!.holds(large)).toBe(true);
    expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(before.buffer))).toBe(true);
  });
});

describe('ring all-reduce in one process', () => {
  const lengths = [0, 1, 2, 3, 7, 1000, 4099];
  for (const n of [1, 2, 3, 4, 5]) {
    it(`sums exactly with ${n} rank(s) for lengths ${lengths.join(', ')}`, async () => {
      for (const length of lengths) {
        // 64-byte chunks: many chunks per segment, so the pipelining is exercised.
        const ring = localRing(n, 64, length + n);
        const inputs = integerInputs(n, length, length * 31 + n);
        const buffers = inputs.map((input) => input.slice());
        await allReduceAll(ring, buffers);
        const expected = Float32Array.from(referenceSum(inputs));
        for (const buffer of buffers) expect(buffer).toEqual(expected);
      }
    });
  }

  it('averages random floats within float32 rounding, every rank holding the same bits', async () => {
    for (const n of [2, 3, 5]) {
      const length = 12_345;
      const ring = localRing(n, 4096, n);
      const inputs = randomInputs(n, length, 7 * n);
      const buffers = inputs.map((input) => input.slice());
      await allReduceAll(ring, buffers, { op: 'mean' });
      const sum = referenceSum(inputs);
      for (let i = 0; i < length; i++) expect(Math.abs(buffers[0]![i]! - sum[i]! / n)).toBeLessThan(1e-5);
      expectBitIdentical(buffers);
    }
  });

  it('runs many collectives back to back on the same ring without mixing them up', async () => {
    const n = 3;
    const ring = localRing(n, 128, 99);
    const rounds = 5;
    const inputs = Array.from({ length: rounds }, (_, round) => integerInputs(n, 333 + round, round));
    const buffers = inputs.map((round) => round.map((b) => b.slice()));
    // Each rank issues all its calls at once; the collective must run them in order.
    await Promise.all(ring.map((member, rank) => Promise.all(buffers.map((round) => member.allReduce(round[rank]!)))));
    buffers.forEach((round, r) => {
      const expected = Float32Array.from(referenceSum(inputs[r]!));
      for (const buffer of round) expect(buffer).toEqual(expected);
    });
  });

  it('fp16 on the wire: half the bytes, result within half-precision error, replicas identical', async () => {
    const n = 4;
    const length = 10_001;
    const ring = localRing(n, 1024, 5);
    const inputs = randomInputs(n, length, 11);
    const buffers = inputs.map((input) => input.slice());
    const stats = await Promise.all(ring.map((member, rank) => member.allReduce(buffers[rank]!, { op: 'mean', codec: new Fp16Codec() })));
    const sum = referenceSum(inputs);
    let maxError = 0;
    for (let i = 0; i < length; i++) maxError = Math.max(maxError, Math.abs(buffers[0]![i]! - sum[i]! / n));
    // Each value ≤ 5 in magnitude; fp16 keeps 11 significant bits: a few ulps of 2^-8 over 3 hops.
    expect(maxError).toBeLessThan(0.02);
    expect(maxError).toBeGreaterThan(0);
    expectBitIdentical(buffers);
    const expectedBytes = 2 * (n - 1) * (length / n) * 2;
    expect(Math.abs(stats[0]!.bytesSent - expectedBytes)).toBeLessThanOrEqual(2 * (n - 1) * 2 * 2);
  });
});

describe('ring all-gather and broadcast in one process', () => {
  it('all-gathers each rank’s segment, for uneven segment sizes', async () => {
    for (const n of [1, 2, 3, 5]) {
      for (const length of [0, 4, 17, 2003]) {
        const ring = localRing(n, 32, length);
        const full = integerInputs(1, length, length)[0]!;
        const buffers = ring.map((member) => {
          const buffer = new Float32Array(length).fill(NaN);
          const own = member.segmentOf(length);
          buffer.set(full.subarray(own.start, own.end), own.start);
          return buffer;
        });
        await Promise.all(ring.map((member, rank) => member.allGather(buffers[rank]!)));
        for (const buffer of buffers) expect(buffer).toEqual(full);
      }
    }
  });

  it('broadcasts from any root, bit for bit (NaN payloads and -0 included)', async () => {
    for (const n of [1, 2, 3, 4]) {
      for (let root = 0; root < n; root++) {
        const length = 1501;
        const ring = localRing(n, 256, root);
        const source = randomInputs(1, length, root)[0]!;
        new Uint32Array(source.buffer)[3] = 0x7fc01234; // a NaN with a payload
        source[4] = -0;
        const buffers = ring.map((_, rank) => (rank === root ? source.slice() : new Float32Array(length)));
        await Promise.all(ring.map((member, rank) => member.broadcast(buffers[rank]!, root)));
        expectBitIdentical([source, ...buffers]);
      }
    }
  });
});

describe('ring failures', () => {
  it('names the mismatch when ranks pass buffers of different lengths, then refuses further calls', async () => {
    // Ranks not told about the mismatch give up after their receive timeout.
    const ring = localRing(3, 64, 1, 1_000);
    const results = await Promise.allSettled(ring.map((member, rank) => member.allReduce(new Float32Array(rank === 1 ? 101 : 100))));
    const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as RingError);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.some((e) => e.kind === 'desync' && /same length/.test(e.message))).toBe(true);
    const broken = errors[0]!;
    const failedRank = results.findIndex((r) => r.status === 'rejected');
    await expect(ring[failedRank]!.allReduce(new Float32Array(100))).rejects.toThrow(/broken by an earlier failure/);
    expect(broken).toBeInstanceOf(RingError);
  }, 20_000);

  it('times out with a clear message when a rank never joins the collective', async () => {
    const channels = createLocalRing(3);
    const ring = channels.map((channel, rank) => new RingCollective({ rank, worldSize: 3, channel }, { timeoutMs: 300 }));
    const started = Date.now();
    // Rank 2 never calls: ranks 0 and 1 must give up on their own, not hang.
    const results = await Promise.allSettled([ring[0]!.allReduce(new Float32Array(10)), ring[1]!.allReduce(new Float32Array(10))]);
    expect(Date.now() - started).toBeLessThan(5_000);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect(((result as PromiseRejectedResult).reason as Error).message).toMatch(/no frame from the previous rank within 300 ms/);
    }
  });

  it('picks the automatic chunk: 1 MiB, larger only for large raw buffers on planes that take larger frames', () => {
    const MiB = 1 << 20;
    expect(autoChunkBytes(64 * MiB, 4, 64 * MiB)).toBe(4 * MiB);
    expect(autoChunkBytes(64 * MiB, 2, 64 * MiB)).toBe(4 * MiB);
    expect(autoChunkBytes(32 * MiB, 4, 64 * MiB)).toBe(2 * MiB);
    expect(autoChunkBytes(16 * MiB, 4, 64 * MiB)).toBe(MiB);
    expect(autoChunkBytes(1024, 4, 64 * MiB)).toBe(MiB);
    expect(autoChunkBytes(64 * MiB, 4, 2 * MiB)).toBe(2 * MiB); // what the plane takes
    expect(autoChunkBytes(64 * MiB, 4, undefined)).toBe(MiB); // a plane that states no limit
    const [local] = localRing(2, 4096);
    expect(local!.chunkElementsFor(64 * MiB)).toBe(1024); // the caller's chunk wins
    const auto = new RingCollective({ rank: 0, worldSize: 2, channel: { maxFrameBytes: 64 * MiB, send: () => Promise.resolve(), receive: () => new Promise(() => {}) } });
    expect(auto.chunkElementsFor((64 * MiB) / 4) * 4).toBe(4 * MiB);
    expect(auto.chunkElementsFor((64 * MiB) / 4, new Fp16Codec()) * 4).toBe(MiB); // encoding codecs keep 1 MiB
  });

  it('rejects bad arguments with a usage error', async () => {
    expect(() => new RingCollective({ rank: 2, worldSize: 2 })).toThrow(/rank must be an integer in \[0, 2\)/);
    expect(() => new RingCollective({ rank: 0, worldSize: 2 })).toThrow(/needs a channel/);
    expect(() => new RingCollective({ rank: 0, worldSize: 1 }, { chunkBytes: 6 })).toThrow(/multiple of 4/);
    const single = new RingCollective({ rank: 0, worldSize: 1 });
    await expect(single.broadcast(new Float32Array(3), 1)).rejects.toThrow(/root must be a rank/);
  });
});
