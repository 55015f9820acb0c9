/**
 * The data-parallel session's data and gradient exchange, in one process: global batches read
 * through the pipeline (split by rank, resumable at any step, surviving a change of world size),
 * the job's dataset opened from its spec (CSV, image folder) with errors naming the field, and the
 * session's exchange (buckets, fp16, PowerSGD) with its stop flag and uneven-slice weighting.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterJob } from '../coordinator/job/cluster-job.js';
import { trainingPlan } from '../coordinator/job/training-plan.js';
import { createLocalRing } from '../peer/allreduce/local-channel.js';
import { RingCollective } from '../peer/allreduce/ring-collective.js';
import { GlobalBatches } from '../peer/session/global-batches.js';
import { SessionGradientExchange, type ExchangeSettings } from '../peer/session/session-exchange.js';
import { Dataset, type DataSource, type PipelineBatch, type Sample } from '../shared/data/index.js';
import { openJobData } from '../shared/data/open-dataset.js';
import { JobValidationError } from '../shared/job/schema.js';
import { Prng } from '../shared/random/prng.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rp-session-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Sample i is ([i, 2i], i mod 3): a batch's features name its samples. */
function numbered(size: number): Dataset<Sample> {
  const source: DataSource<Sample> = { name: `numbered-${size}`, size, skipped: [], read: (i) => ({ x: Float32Array.of(i, 2 * i), label: i % 3 }) };
  return Dataset.from(source);
}

const samplesOf = (batch: PipelineBatch): number[] => Array.from({ length: batch.size }, (_, i) => batch.xs[2 * i]!);

describe('global batches through the pipeline', () => {
  // 47 samples, global batch 10: 4 batches per epoch (7 dropped), 12 steps over 3 epochs.
  const plan = trainingPlan({ batchSize: 10, epochs: 3, maxSteps: 0 }, 47);
  const batches = new GlobalBatches(numbered(47), plan, 5, 2);

  async function stepsOf(rank: number, world: number, afterStep: number, count: number): Promise<number[][]> {
    const stream = batches.open(rank, world, afterStep);
    try {
      const out: number[][] = [];
      for (let i = 0; i < count; i++) out.push(samplesOf(await stream.next()));
      return out;
    } finally {
      await stream.close();
    }
  }

  it('the slices of all ranks make up the global batch of the step, whatever the world size', async () => {
    const whole = await stepsOf(0, 1, 0, plan.totalSteps);
    expect(whole.every((b) => b.length === 10)).toBe(true);
    // Each epoch visits 40 distinct samples, a fresh order each epoch.
    expect(new Set(whole.slice(0, 4).flat()).size).toBe(40);
    expect(whole.slice(4, 8).flat()).not.toEqual(whole.slice(0, 4).flat());
    for (const world of [2, 3]) {
      const ranks = await Promise.all(Array.from({ length: world }, (_, r) => stepsOf(r, world, 0, plan.totalSteps)));
      for (let s = 0; s < plan.totalSteps; s++) expect(ranks.flatMap((slices) => slices[s]!)).toEqual(whole[s]);
    }
    // Uneven slices: 3 + 3 + 4.
    expect((await Promise.all([0, 1, 2].map((r) => stepsOf(r, 3, 0, 1)))).map((s) => s[0]!.length)).toEqual([3, 3, 4]);
  });

  it('resumes after any step with exactly the batches that came next (across epochs), and after a membership change the survivors divide the same next batch', async () => {
    const whole = await stepsOf(0, 1, 0, plan.totalSteps);
    for (const after of [1, 3, 4, 7, 11]) expect(await stepsOf(0, 1, after, plan.totalSteps - after)).toEqual(whole.slice(after));
    // Three peers train steps 1–5, one is lost: two survivors continue from step 6.
    const survivors = await Promise.all([0, 1].map((r) => stepsOf(r, 2, 5, 3)));
    for (let i = 0; i < 3; i++) expect([...survivors[0]![i]!, ...survivors[1]![i]!]).toEqual(whole[5 + i]);
  });

  it('a checkpoint saves the iterator\'s own position (with its pipeline); resuming there continues with the next batches, and a position from another pipeline or step is refused', async () => {
    const whole = await stepsOf(0, 1, 0, plan.totalSteps);
    for (const after of [4, 6]) {
      const first = batches.open(0, 1, 0);
      for (let i = 0; i < after; i++) await first.next();
      const saved = first.savedPosition;
      await first.close();
      expect(saved.pipeline).toMatch(/^numbered-47 \(47 samples\) \| shuffle buffer 47 seed 5 \| batch 10$/);
      const resumed = batches.open(0, 1, after, undefined, saved);
      const next: number[][] = [];
      for (let i = after; i < plan.totalSteps; i++) next.push(samplesOf(await resumed.next()));
      await resumed.close();
      expect(next).toEqual(whole.slice(after));
    }
    const saved = { epoch: 1, index: 20, pipeline: 'numbered-47 (47 samples) | shuffle buffer 47 seed 6 | batch 10' };
    expect(() => batches.open(0, 1, 6, undefined, saved)).toThrow(/cannot resume: the checkpoint's data position belongs to the pipeline\n {2}numbered-47 \(47 samples\) \| shuffle buffer 47 seed 6/);
    // Where the source lives is not compared (peers may keep the dataset at different paths).
    const elsewhere = batches.open(0, 1, 6, undefined, { ...saved, pipeline: 'numbered-47-on-another-disk (47 samples) | shuffle buffer 47 seed 5 | batch 10' });
    expect(samplesOf(await elsewhere.next())).toEqual(whole[6]);
    await elsewhere.close();
    expect(() => batches.open(0, 1, 5, undefined, saved)).toThrow(/saved the data position \{"epoch":1,"index":20\}, but step 5 ends at \{"epoch":1,"index":10\}/);
  });

  it('bit for bit the same features as the source, and the same order for the same seed only', async () => {
    const again = new GlobalBatches(numbered(47), plan, 5, 0).open(0, 1, 0);
    const other = new GlobalBatches(numbered(47), plan, 6, 0).open(0, 1, 0);
    const [a, b] = [await again.next(), await other.next()];
    await Promise.all([again.close(), other.close()]);
    expect(samplesOf(a)).toEqual((await stepsOf(0, 1, 0, 1))[0]);
    expect(samplesOf(b)).not.toEqual(samplesOf(a));
    for (let i = 0; i < a.size; i++) expect([a.xs[2 * i + 1], a.labels[i]]).toEqual([2 * a.xs[2 * i]!, a.xs[2 * i]! % 3]);
  });
});

describe('the job dataset', () => {
  function csv(name: string, rows: string[]): string {
    const file = path.join(tmp, name);
    writeFileSync(file, `${['sepal', 'petal', 'kind'].join(',')}\n${rows.join('\n')}\n`);
    return file;
  }
  const rows = Array.from({ length: 50 }, (_, i) => `${i / 10},${(i % 7) / 7},${['a', 'b', 'c'][i % 3]}`);

  it('a CSV file: features and class names mapped, a fixed tenth held out for testing, disjoint from training', async () => {
    const train = csv('iris.csv', rows);
    const spec = parseClusterJob({ dataset: { kind: 'csv', train, label: 'kind' } }).dataset;
    const data = await openJobData(spec);
    expect(data).toMatchObject({ trainCount: 45, testCount: 5, inputShape: [2], numClasses: 3 });
    const all = async (d: Dataset<Sample>) => {
      const it = d.batch(100, { dropRemainder: false }).iterate();
      const batch = await it.next();
      await it.close();
      return samplesOf(batch);
    };
    const [trainX, testX] = [await all(data.train), await all(data.test)];
    expect([...trainX, ...testX].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => Math.fround(i / 10)));
    expect(await all((await openJobData(spec)).test)).toEqual(testX);
    // Same rows, same fingerprint; one value changed behind the same number of rows, another.
    expect((await openJobData(spec)).fingerprint).toBe(data.fingerprint);
    const edited = csv('iris-edited.csv', [...rows.slice(0, 49), '9,9,a']);
    expect((await openJobData(parseClusterJob({ dataset: { kind: 'csv', train: edited, label: 'kind' } }).dataset)).fingerprint).not.toBe(data.fingerprint);
  });

  it('a JSON Lines file with a test file: numeric labels are the class indices, features from one array key', async () => {
    const lines = (from: number, count: number) => Array.from({ length: count }, (_, i) => JSON.stringify({ pixels: [from + i, 0.5], y: (from + i) % 4 })).join('\n');
    const train = path.join(tmp, 'rows.jsonl');
    const test = path.join(tmp, 'rows-test.jsonl');
    writeFileSync(train, `${lines(0, 20)}\n\n`);
    writeFileSync(test, lines(100, 6));
    const data = await openJobData(parseClusterJob({ dataset: { kind: 'jsonl', train, test, label: 'y', features: 'pixels' } }).dataset);
    expect(data).toMatchObject({ trainCount: 20, testCount: 6, inputShape: [2], numClasses: 4 });
    const it = data.test.batch(6).iterate();
    const batch = await it.next();
    await it.close();
    expect(Array.from(batch.labels)).toEqual([0, 1, 2, 3, 0, 1]);
  });

  it('errors name the job field and the file, line or column', async () => {
    const train = csv('named.csv', rows);
    await expect(openJobData(parseClusterJob({ dataset: { kind: 'csv', train, label: 'species' } }).dataset)).rejects.toThrow(/^dataset\.train: .*named\.csv:1: label column "species" not found; the columns are "sepal", "petal", "kind"/);
    const test = csv('unknown-class.csv', ['1,2,a', '3,4,d']);
    await expect(openJobData(parseClusterJob({ dataset: { kind: 'csv', train, test, label: 'kind' } }).dataset)).rejects.toThrow(/^dataset\.test: .*unknown-class\.csv:3: label 'd' is not one of the classes \["a","b","c"\]/);
    await expect(openJobData(parseClusterJob({ dataset: { kind: 'jsonl', train: path.join(tmp, 'absent.jsonl'), label: 'y', features: 'x' } }).dataset)).rejects.toThrow(/^dataset\.train: .*absent\.jsonl: cannot read the file \(ENOENT\)/);
    const problems = (input: unknown) => {
      try {
        parseClusterJob(input);
      } catch (error) {
        return (error as JobValidationError).problems;
      }
      return [];
    };
    expect(problems({ dataset: 'cifar10', compress: 'zip', powerSgdRank: 2 })).toEqual([
      'dataset: must be "mnist" or an object whose kind is one of "mnist", "csv", "jsonl", "image-folder" (see docs/data.md), got "cifar10"',
      'compress: must be one of "none", "fp16", "powersgd", got "zip"',
      'powerSgdRank: applies only with compress "powersgd", got compress "zip"',
    ]);
    expect(problems({ dataset: { kind: 'image-folder', imageSize: [28], channels: 2, parallel: -1 } })).toEqual([
      'dataset.train: is required',
      'dataset.parallel: must be at least 0, got -1',
      'dataset.imageSize: must be [height, width] in pixels, e.g. [28, 28], got [28]',
      'dataset.channels: must be 1 (greyscale) or 3 (RGB), got 2',
    ]);
    expect(problems({ compress: 'powersgd', bucketMiB: 4 })).toEqual([expect.stringMatching(/^bucketMiB: PowerSGD compresses the whole gradient at once/)]);
    expect(parseClusterJob({}).dataset).toBe('mnist');
  });

  it('an image folder: decoded in worker threads and resized to imageSize, classes from the sub-folders', async () => {
    const root = path.join(tmp, 'images');
    for (const [label, name] of ['cat', 'dog'].entries()) {
      mkdirSync(path.join(root, name), { recursive: true });
      for (let i = 0; i < 5; i++) {
        const png = new PNG({ width: 12, height: 10 });
        png.data.fill(label * 200 + i);
        writeFileSync(path.join(root, name, `${i}.png`), PNG.sync.write(png));
      }
    }
    const data = await openJobData(parseClusterJob({ dataset: { kind: 'image-folder', train: root, imageSize: [8, 8], testFraction: 0.2, parallel: 1 } }).dataset);
    expect(data).toMatchObject({ trainCount: 8, testCount: 2, inputShape: [8, 8, 1], numClasses: 2 });
    const it = data.train.batch(8).iterate();
    const batch = await it.next();
    await it.close();
    expect(batch.xs.length).toBe(8 * 64);
    // A uniform image stays uniform through the resize; its grey level names its class.
    for (let b = 0; b < 8; b++) expect(batch.xs[b * 64]! > 0.5 ? 1 : 0).toBe(batch.labels[b]);
  });
});

describe('the session gradient exchange', () => {
  /** A small model per rank with the same shapes (kernel 6×5 compresses under PowerSGD rank 1). */
  function models(n: number): tf.LayersModel[] {
    return Array.from({ length: n }, () => tf.sequential({ layers: [tf.layers.dense({ inputShape: [6], units: 5 }), tf.layers.dense({ units: 3 })] }));
  }

  function gradients(model: tf.LayersModel, seed: number): tf.NamedTensorMap {
    const prng = new Prng(seed);
    const grads: tf.NamedTensorMap = {};
    for (const w of model.trainableWeights) grads[(w.read() as tf.Variable).name] = tf.tensor(Float32Array.from({ length: w.read().size }, () => prng.next() - 0.5), w.read().shape);
    return grads;
  }

  /** One exchange on every rank at once; returns each rank's averaged gradients, flattened. */
  async function exchangeAll(settings: ExchangeSettings, shares: number[], stopFrom: number[], steps = 1): Promise<{ values: Float32Array[]; stop: boolean[]; wire: number[] }[]> {
    const n = shares.length;
    const rings = createLocalRing(n).map((channel, rank) => new RingCollective({ rank, worldSize: n, ...(n > 1 ? { channel } : {}) }, { chunkBytes: 64, timeoutMs: 5_000 }));
    const ms = models(n);
    const exchanges = ms.map((m, r) => new SessionGradientExchange(rings[r]!, m, settings));
    const out = [];
    for (let step = 0; step < steps; step++) {
      exchanges.forEach((e, r) => {
        e.share = shares[r]!;
        e.stopRequested = step === steps - 1 && stopFrom.includes(r);
      });
      const averaged = await Promise.all(exchanges.map((e, r) => e.exchange(gradients(ms[r]!, 100 * step + r))));
      const values = averaged.map((grads, r) => Float32Array.from(ms[r]!.trainableWeights.flatMap((w) => Array.from(grads[(w.read() as tf.Variable).name]!.dataSync()))));
      averaged.forEach((g) => tf.dispose(g));
      out.push({ values, stop: exchanges.map((e) => e.stopAgreed), wire: exchanges.map((e) => e.wireBytes) });
    }
    ms.forEach((m) => m.dispose());
    return out;
  }

  function expected(shares: number[], step = 0): Float64Array {
    const ms = models(1);
    const total = new Float64Array(ms[0]!.countParams());
    shares.forEach((share, r) => {
      const grads = gradients(ms[0]!, 100 * step + r);
      let offset = 0;
      for (const w of ms[0]!.trainableWeights) {
        for (const v of grads[(w.read() as tf.Variable).name]!.dataSync()) total[offset++]! += Math.fround(v * share);
      }
      tf.dispose(grads);
    });
    ms[0]!.dispose();
    return total;
  }

  it('none, in buckets: uneven slices weighted to the exact global mean, bit-identical on every rank; the stop flag agreed by all', async () => {
    const shares = [3 / 10, 3 / 10, 4 / 10];
    const [step] = await exchangeAll({ compress: 'none', bucketBytes: 40, seed: 1 }, shares, [1]);
    const want = expected(shares);
    for (const values of step!.values) {
      expect(Buffer.from(values.buffer).equals(Buffer.from(step!.values[0]!.buffer))).toBe(true);
      values.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-6));
    }
    expect(step!.stop).toEqual([true, true, true]);
    expect((await exchangeAll({ compress: 'none', seed: 1 }, shares, []))[0]!.stop).toEqual([false, false, false]);
  });

  it('fp16 and PowerSGD: every rank gets the same bits, the flag travels exactly, fewer bytes on the wire', async () => {
    const shares = [0.5, 0.5];
    const plain = (await exchangeAll({ compress: 'none', seed: 1 }, shares, []))[0]!;
    for (const settings of [{ compress: 'fp16', bucketBytes: 40, seed: 1 }, { compress: 'powersgd', powerSgdRank: 1, seed: 1 }] as const) {
      const steps = await exchangeAll(settings, shares, [0], 3);
      for (const step of steps) expect(Buffer.from(step.values[1]!.buffer).equals(Buffer.from(step.values[0]!.buffer))).toBe(true);
      expect(steps.map((s) => s.stop[0] && s.stop[1])).toEqual([false, false, true]);
      expect(steps[0]!.wire[0]!).toBeLessThan(plain.wire[0]!);
    }
    // fp16 is the sum to half precision.
    const fp16 = (await exchangeAll({ compress: 'fp16', seed: 1 }, shares, []))[0]!;
    const want = expected(shares);
    fp16.values[0]!.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(2e-3));
  });
});
