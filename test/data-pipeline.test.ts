import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Dataset, trainingBatches, type DataSource, type PipelineBatch, type Sample } from '../shared/data/index.js';
import type { ImageDataset } from '../shared/data/mnist.js';
import { epochIndexOrder } from '../shared/data/pipeline/index-order.js';
import { packOutcomes, unpackOutcomes } from '../shared/data/pipeline/packed-samples.js';
import { prepareTransfer } from '../shared/data/pipeline/transferables.js';
import { addNoise, calls, countCalls, failOn, returnView } from './fixtures/data-transforms.js';

/** Sample i has features [i, i + 0.5] and label i % 7: every batch says which samples it holds. */
function numberedSource(size: number): DataSource<Sample> {
  return { name: `numbered-${size}`, size, skipped: [], read: (i) => ({ x: Float32Array.of(i, i + 0.5), label: i % 7 }) };
}

function samplesOf(batch: PipelineBatch): number[] {
  return Array.from({ length: batch.size }, (_, b) => batch.xs[b * 2]!);
}

async function take(iterator: { next(): Promise<PipelineBatch> }, count: number): Promise<PipelineBatch[]> {
  const batches: PipelineBatch[] = [];
  for (let i = 0; i < count; i++) batches.push(await iterator.next());
  return batches;
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rp-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('shard', () => {
  it('splits every epoch into disjoint shards that cover every sample exactly once', () => {
    for (const size of [1, 10, 97, 1000]) {
      for (const world of [1, 2, 3, 7]) {
        for (const shuffleFirst of [false, true]) {
          const seen = new Array<number>(size).fill(0);
          for (let rank = 0; rank < world; rank++) {
            const shard = { kind: 'shard' as const, rank, world, equalSize: false };
            const shuffle = { kind: 'shuffle' as const, bufferSize: 64, seed: 9 };
            const order = epochIndexOrder(size, shuffleFirst ? [shuffle, shard] : [shard, shuffle], 3);
            expect(Math.abs(order.length - size / world)).toBeLessThan(1);
            for (const sample of order) seen[sample]!++;
          }
          expect(seen.every((n) => n === 1), `size ${size} world ${world}`).toBe(true);
        }
      }
    }
  });

  it('covers the data across peers through the whole pipeline, batches included', async () => {
    const source = numberedSource(103);
    const seen: number[] = [];
    for (let rank = 0; rank < 3; rank++) {
      const iterator = Dataset.from(source).shard(rank, 3).shuffle(103, 4).batch(5, { dropRemainder: false }).iterate();
      for (const batch of await take(iterator, iterator.batchesPerEpoch)) seen.push(...samplesOf(batch));
      expect(iterator.position.epoch).toBe(0);
      await iterator.close();
    }
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 103 }, (_, i) => i));
  });

  it('equalSize gives every rank the same number of steps', () => {
    const lengths = [0, 1, 2, 3].map((rank) => Dataset.from(numberedSource(103)).shard(rank, 4, { equalSize: true }).batch(1).iterate().epochSamples);
    expect(lengths).toEqual([25, 25, 25, 25]);
  });

  it('trainingBatches deals each peer a fresh, disjoint, equal part every epoch', async () => {
    const count = 50;
    const data: ImageDataset = { images: Uint8Array.from({ length: count }, (_, i) => i), labels: new Uint8Array(count), count, height: 1, width: 1, channels: 1, numClasses: 10 };
    const epochs: number[][][] = [[], []];
    for (let rank = 0; rank < 3; rank++) {
      const iterator = trainingBatches(data, { batchSize: 4, seed: 6, shard: { rank, world: 3 } }).iterate();
      expect(iterator.batchesPerEpoch).toBe(4); // 16 samples each: 50 = 3 × 16 + 2 left out
      for (const epoch of [0, 1]) epochs[epoch]!.push((await take(iterator, 4)).flatMap((b) => Array.from(b.xs, (v) => Math.round(v * 255))));
      await iterator.close();
    }
    for (const shards of epochs) expect(new Set(shards.flat()).size).toBe(48);
    expect(epochs[1]![0]!.slice().sort()).not.toEqual(epochs[0]![0]!.slice().sort()); // a different part next epoch
  });

  it('refuses impossible ranks and shards smaller than a batch, saying what to do', () => {
    expect(() => Dataset.from(numberedSource(10)).shard(2, 2)).toThrow(/rank must be an integer in 0\.\.1, got 2/);
    expect(() => Dataset.from(numberedSource(10)).shard(0, 4).batch(8).iterate()).toThrow(/3 samples in this shard, fewer than one batch of 8\. Use a smaller batch/);
  });
});

describe('split (data-parallel by global batch)', () => {
  const global = () => Dataset.from(numberedSource(95)).shuffle(95, 8).map(addNoise.with({ amount: 0.5 }), { seed: 1 }).batch(10, { chunkSize: 2 });

  async function stepsOf(world: number, steps: number, start?: { epoch: number; index: number }) {
    const perRank: PipelineBatch[][] = [];
    for (let rank = 0; rank < world; rank++) {
      const iterator = global().split(rank, world).iterate(start ? { start } : {});
      expect(iterator.batchesPerEpoch).toBe(9);
      perRank.push(await take(iterator, steps));
      await iterator.close();
    }
    // Step k of all ranks, concatenated in rank order.
    return Array.from({ length: steps }, (_, k) => ({ xs: perRank.flatMap((batches) => [...batches[k]!.xs]), positions: perRank.map((batches) => batches[k]!.position) }));
  }

  it('step k of all peers together is exactly global batch k, and positions are global', async () => {
    const reference = global().iterate();
    const globalBatches = await take(reference, 12); // crosses into epoch 1
    await reference.close();
    const steps = await stepsOf(3, 12);
    steps.forEach((step, k) => {
      expect(step.xs, `step ${k}`).toEqual([...globalBatches[k]!.xs]);
      for (const position of step.positions) expect(position).toEqual(globalBatches[k]!.position);
    });
  });

  it('resumes under a different number of peers with the next global batches', async () => {
    const before = await stepsOf(3, 4);
    const saved = before[3]!.positions[0]!;
    const after = await stepsOf(2, 3, saved);
    const reference = global().iterate({ start: saved });
    for (const step of after) expect(step.xs).toEqual([...(await reference.next()).xs]);
    await reference.close();
  });

  it('refuses positions inside a global batch and batches smaller than the world', () => {
    expect(() => global().split(0, 2).iterate({ start: { epoch: 0, index: 15 } })).toThrow(/resumes at the start of a global batch \(a multiple of 10\)/);
    expect(() => global().split(0, 11)).toThrow(/a global batch of 10 cannot give each of 11 peers a sample/);
  });
});

describe('shuffle', () => {
  it('is a permutation that depends only on (seed, epoch), with tf.data buffer semantics', () => {
    const a = epochIndexOrder(500, [{ kind: 'shuffle', bufferSize: 500, seed: 1 }], 0);
    expect(new Set(a).size).toBe(500);
    expect([...a]).toEqual([...epochIndexOrder(500, [{ kind: 'shuffle', bufferSize: 500, seed: 1 }], 0)]);
    expect([...a]).not.toEqual([...epochIndexOrder(500, [{ kind: 'shuffle', bufferSize: 500, seed: 1 }], 1)]);
    expect([...a]).not.toEqual([...epochIndexOrder(500, [{ kind: 'shuffle', bufferSize: 500, seed: 2 }], 0)]);
    // A buffer of 10 can move a sample at most 9 places earlier than its input position.
    const local = epochIndexOrder(500, [{ kind: 'shuffle', bufferSize: 10, seed: 1 }], 0);
    local.forEach((sample, position) => expect(sample).toBeLessThanOrEqual(position + 9));
  });
});

describe('determinism', () => {
  it('gives identical batches, augmentation included, inline and with 1 or 2 worker threads', async () => {
    const source = numberedSource(300);
    const run = async (parallel: number) => {
      const iterator = Dataset.from(source).shuffle(100, 3).map(addNoise.with({ amount: 0.25 }), { parallel, seed: 11 }).batch(16, { chunkSize: 5 }).prefetch(3).iterate();
      const batches = await take(iterator, 25); // crosses into epoch 1
      await iterator.close();
      return batches.map((b) => ({ xs: [...b.xs], labels: [...b.labels], epoch: b.epoch }));
    };
    const inline = await run(0);
    expect(inline.at(-1)!.epoch).toBe(1);
    expect(inline[0]!.xs[0]! % 1).not.toBe(0); // noise really was added
    expect(await run(1)).toEqual(inline);
    expect(await run(2)).toEqual(inline);
  });

  it('pipelines share the process\'s worker threads: closing one leaves the other\'s batches untouched', async () => {
    const source = numberedSource(200);
    const build = (parallel: number) => Dataset.from(source).shuffle(200, 4).map(addNoise.with({ amount: 0.5 }), { parallel, seed: 2 }).batch(8, { chunkSize: 3 }).prefetch(4);
    const expected = await take(build(0).iterate(), 20);
    const [kept, closed] = [build(2).iterate(), build(2).iterate()];
    const first = await take(kept, 10);
    await take(closed, 3);
    await closed.close();
    const rest = await take(kept, 10);
    await kept.close();
    expect([...first, ...rest].map((b) => [...b.xs])).toEqual(expected.map((b) => [...b.xs]));
  });

  it('moves buffers to workers and back, copying views instead of dragging their whole buffer', async () => {
    const owned = new Float32Array(4);
    const view = new Float32Array(1000).subarray(10, 12);
    const message = { a: owned, nested: { b: view } };
    const { value, transfer } = prepareTransfer(message);
    expect(transfer).toHaveLength(2);
    expect(transfer[0]).toBe(owned.buffer);
    expect((value as typeof message).nested.b.buffer.byteLength).toBe(8);

    const iterator = Dataset.from(numberedSource(40)).map(returnView.with({}), { parallel: 1 }).batch(8).iterate();
    const batch = await iterator.next();
    await iterator.close();
    expect(samplesOf(batch)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('resumable position', () => {
  it('continues with exactly the batches that would have come next, mid-epoch and across epochs', async () => {
    const build = (parallel: number) => Dataset.from(numberedSource(90)).shard(1, 2).shuffle(20, 5).map(addNoise.with({ amount: 1 }), { parallel, seed: 2 }).batch(7).prefetch(2);
    const original = build(0).iterate();
    const expected = await take(original, 20);
    await original.close();
    for (const cut of [0, 3, 5, 6, 13]) {
      const saved = JSON.parse(JSON.stringify(expected[cut]!.position)); // as stored in a checkpoint
      const resumed = build(cut === 13 ? 2 : 0).iterate({ start: saved });
      const next = await take(resumed, 20 - cut - 1);
      await resumed.close();
      expect(next.map((b) => [...b.xs]), `resumed after batch ${cut}`).toEqual(expected.slice(cut + 1).map((b) => [...b.xs]));
    }
    // 45 samples per shard, batches of 7: 6 full batches, then 3 dropped; batch 6 starts epoch 1.
    expect(expected[5]!.position).toMatchObject({ epoch: 0, index: 42 });
    expect(expected[6]!.epoch).toBe(1);
  });

  it('accepts a plain BatchPosition, and refuses a position from a differently ordered pipeline', async () => {
    const data = Dataset.from(numberedSource(50)).shuffle(50, 1).batch(5);
    const first = data.iterate();
    const [, second] = await take(first, 2);
    await first.close();
    const resumed = data.iterate({ start: { epoch: 0, index: 5 } });
    expect(samplesOf(await resumed.next())).toEqual(samplesOf(second!));
    await resumed.close();
    const otherSeed = Dataset.from(numberedSource(50)).shuffle(50, 2).batch(5);
    expect(() => otherSeed.iterate({ start: second!.position })).toThrow(/saved position belongs to the pipeline\n.*seed 1 \| batch 5\nbut this one is\n.*seed 2 \| batch 5/);
    expect(() => data.iterate({ start: { epoch: 0, index: 51 } })).toThrow(/an epoch of this pipeline has only 50 samples/);
  });
});

describe('cache', () => {
  const run = async (cache: { file?: string } | undefined, epochs = 3) => {
    calls.count = 0;
    const mapped = Dataset.from(numberedSource(30)).map(countCalls.with({}));
    const iterator = (cache ? mapped.cache(cache) : mapped).shuffle(30, 1).batch(10).iterate();
    const batches = await take(iterator, 3 * epochs);
    await iterator.close();
    return { calls: calls.count, batches: batches.map(samplesOf) };
  };

  it('runs the maps before it once per sample, in memory or in a file a later run reuses', async () => {
    const uncached = await run(undefined);
    expect(uncached.calls).toBe(90);
    expect(new Set(uncached.batches.flat()).size).toBe(30);
    const memory = await run({});
    expect(memory).toEqual({ calls: 30, batches: uncached.batches });
    const file = path.join(tmp, 'numbered.cache');
    expect(await run({ file })).toEqual({ calls: 30, batches: uncached.batches });
    expect(await run({ file })).toEqual({ calls: 0, batches: uncached.batches });
  });

  it('refuses a cache file that holds another pipeline\'s elements', async () => {
    const file = path.join(tmp, 'other.cache');
    await run({ file }, 1);
    const iterate = () => Dataset.from(numberedSource(31)).map(countCalls.with({})).cache({ file }).batch(10).iterate();
    expect(iterate).toThrow(/other\.cache: this cache file holds a different pipeline \(numbered-30 \(30 samples\) → countCalls\(\{\}\) seed 0\)\. Delete it/);
    writeFileSync(file, 'not a cache');
    expect(iterate).toThrow(/holds something that is not a ringpipe cache/);
  });
});

describe('packed hand-back from worker threads', () => {
  it('packs a chunk\'s samples into one buffer and back, failures in place; anything else travels unpacked', () => {
    const failed = { ok: false as const, error: 'bad', stage: 0 };
    const outcomes = [{ ok: true as const, value: { x: Float32Array.of(1, 2), label: 3 } }, failed, { ok: true as const, value: { x: Float32Array.of(4, 5), label: 0 } }];
    const packed = packOutcomes(outcomes)!;
    expect([...packed.xs]).toEqual([1, 2, 4, 5]);
    expect(unpackOutcomes(packed)).toEqual(outcomes);
    expect(packOutcomes([{ ok: true, value: { x: Float32Array.of(1), label: 0 } }, { ok: true, value: { x: Float32Array.of(1, 2), label: 0 } }])).toBeUndefined();
    expect(packOutcomes([{ ok: true, value: { x: Float32Array.of(1), label: 1.5 } }])).toBeUndefined();
    expect(packOutcomes([{ ok: true, value: { pixels: new Uint8Array(1), label: 1 } }])).toBeUndefined();
  });

  it('gives the same batches, skips and sample indices inline and in threads, and a cache after threaded maps keeps samples it owns', async () => {
    const run = async (parallel: number, cache: boolean) => {
      let dataset = Dataset.from(numberedSource(60)).shuffle(60, 2).map(failOn.with({ samples: [5, 17] }), { parallel, onError: 'skip' });
      if (cache) dataset = dataset.cache();
      const iterator = dataset.batch(8, { chunkSize: 3 }).prefetch(2).iterate();
      const batches = await take(iterator, 12); // two epochs: the second one read from the cache
      await iterator.close();
      return batches.map((b) => ({ xs: [...b.xs], labels: [...b.labels], indices: [...b.sampleIndices], position: b.position.index }));
    };
    const inline = await run(0, false);
    expect(inline[0]!.indices).toEqual(inline[0]!.xs.filter((_, i) => i % 2 === 0));
    expect(inline.flatMap((b) => b.indices)).not.toContain(5);
    expect(await run(2, false)).toEqual(inline);
    expect(await run(2, true)).toEqual(inline);
  });
});

describe('bad samples', () => {
  it('stop the pipeline with the transform\'s message, naming the file', async () => {
    const iterator = Dataset.from(numberedSource(40)).map(failOn.with({ samples: [13] }), { parallel: 1 }).batch(8).iterate();
    await take(iterator, 1);
    await expect(iterator.next()).rejects.toThrow(/^fake-13\.png: cannot decode the image \(broken on purpose\)\.$/);
    await iterator.close();
  });

  it('are skipped and counted when asked, the batch filling up from the following samples', async () => {
    const iterator = Dataset.from(numberedSource(40)).map(failOn.with({ samples: [3, 13, 14] }), { onError: 'skip' }).batch(8).iterate();
    const [first, second] = await take(iterator, 2);
    expect(samplesOf(first!)).toEqual([0, 1, 2, 4, 5, 6, 7, 8]);
    expect(samplesOf(second!)).toEqual([9, 10, 11, 12, 15, 16, 17, 18]);
    expect(second!.position.index).toBe(19);
    expect(iterator.skipStats.skipped).toBe(3);
    expect(iterator.skipStats.examples[0]).toEqual({ where: 'fake-3.png', problem: 'fake-3.png: cannot decode the image (broken on purpose).' });
    await iterator.close();
  });

  it('that are not samples get a message saying how to make them', async () => {
    const iterator = Dataset.from({ name: 'raw', size: 4, skipped: [], read: () => ({ pixels: new Uint8Array(2), label: 1 }) } as unknown as DataSource<Sample>).batch(2).iterate();
    await expect(iterator.next()).rejects.toThrow(/raw sample 0: batch\(\) needs samples \{ x: Float32Array, label: number \}; got \{ pixels: Uint8Array, label: number \}/);
    await iterator.close();
  });
});
