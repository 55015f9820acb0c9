import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_WEIGHTS_FILE, WEIGHTS_FILE } from '../coordinator/checkpoint/checkpoint-layout.js';
import { CheckpointStore } from '../coordinator/checkpoint/checkpoint-store.js';
import type { TrainingStateRecord } from '../coordinator/checkpoint/training-state-record.js';
import { parseClusterJob } from '../coordinator/job/cluster-job.js';
import type { TransferFile } from '../coordinator/protocol/file-transfer.js';
import { exportCheckpointFiles, importCheckpointFiles } from '../peer/session/checkpoint-files.js';
import { TrainingState } from '../peer/session/training-state.js';
import { trainStep } from '../peer/trainer/train-step.js';
import { loadMnist, type ImageDataset } from '../shared/data/mnist.js';
import { epochOrder, gatherBatch } from '../shared/data/epoch-batches.js';
import { selectBackend } from '../shared/engine/select-backend.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rp-ckpt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Bit-for-bit equality (vitest's deep equality walks 1.6M elements one by one). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** A logger whose lines the test can read. */
function capturingLogger(): { log: pino.Logger; warnings: () => string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  return { log, warnings: () => lines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((e) => e.level === 40).map((e) => e.msg) };
}

function files(seed: number): TransferFile[] {
  const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
  return [
    { name: WEIGHTS_FILE, data: bytes(1000) },
    { name: MODEL_FILE, data: new TextEncoder().encode(`{"seed":${seed}}`) },
    { name: OPTIMIZER_WEIGHTS_FILE, data: bytes(2000) },
    { name: OPTIMIZER_FILE, data: new TextEncoder().encode('{}') },
  ];
}

function record(step: number): TrainingStateRecord {
  return {
    step,
    totalSteps: 1000,
    epoch: 0,
    dataPosition: { epoch: 0, index: step * 128 },
    rng: { algorithm: 'test', seed: 42, shuffleEpoch: 0 },
    membershipEpoch: 1,
    worldSize: 2,
    loss: 0.5,
    job: parseClusterJob({}) as unknown as Record<string, unknown>,
    savedAt: new Date().toISOString(),
  };
}

describe('checkpoint store', () => {
  it('writes atomically with a sha256 manifest, keeps the last n, and reads back exactly', async () => {
    const dir = path.join(tmp, 'keep');
    const { log } = capturingLogger();
    const store = new CheckpointStore(dir, 2, log);
    await store.open();
    for (const step of [10, 20, 30]) await store.write(step, files(step), record(step));
    expect(readdirSync(dir).sort()).toEqual(['step-00000020', 'step-00000030']);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'step-00000030', 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string }> };
    expect(Object.keys(manifest.files).sort()).toEqual([MODEL_FILE, WEIGHTS_FILE, OPTIMIZER_FILE, OPTIMIZER_WEIGHTS_FILE, 'training-state.json'].sort());
    const loaded = await new CheckpointStore(dir, 2, log).loadNewestGood();
    expect(loaded?.step).toBe(30);
    expect(loaded?.state.dataPosition).toEqual({ epoch: 0, index: 3840 });
    expect(loaded?.files.find((f) => f.name === WEIGHTS_FILE)?.data).toEqual(files(30)[0]!.data);
  });

  it('rewrites a step that is checkpointed again (work redone after a resume)', async () => {
    const dir = path.join(tmp, 'again');
    const { log } = capturingLogger();
    const store = new CheckpointStore(dir, 3, log);
    await store.open();
    await store.write(10, files(1), record(10));
    await store.write(10, files(2), record(10));
    const loaded = await store.loadNewestGood();
    expect(new TextDecoder().decode(loaded!.files.find((f) => f.name === MODEL_FILE)!.data)).toBe('{"seed":2}');
    expect(readdirSync(dir)).toEqual(['step-00000010']);
  });

  const corruptions: [string, (checkpoint: string) => void, RegExp][] = [
    ['a truncated weights file', (c) => truncateSync(path.join(c, WEIGHTS_FILE), 500), /model\/weights\.bin has 500 bytes, the manifest says 1000 \(truncated\?\)/],
    [
      'a flipped byte',
      (c) => {
        const file = path.join(c, OPTIMIZER_WEIGHTS_FILE);
        const data = readFileSync(file);
        data[1234] = data[1234]! ^ 0x40;
        writeFileSync(file, data);
      },
      /optimizer\/weights\.bin does not match its sha256 in the manifest/,
    ],
    ['a missing manifest (the write did not finish)', (c) => rmSync(path.join(c, 'manifest.json')), /manifest\.json is missing \(the write did not finish\)/],
    ['a truncated manifest', (c) => truncateSync(path.join(c, 'manifest.json'), 40), /manifest\.json is not a valid manifest/],
    ['a missing file', (c) => rmSync(path.join(c, MODEL_FILE)), /model\/model\.json is missing/],
  ];
  for (const [what, corrupt, expected] of corruptions) {
    it(`falls back to the previous checkpoint on ${what}, warning with the file name`, async () => {
      const dir = path.join(tmp, what.replace(/\W+/g, '-'));
      const { log, warnings } = capturingLogger();
      const store = new CheckpointStore(dir, 3, log);
      await store.open();
      await store.write(100, files(100), record(100));
      await store.write(200, files(200), record(200));
      corrupt(path.join(dir, 'step-00000200'));
      const loaded = await new CheckpointStore(dir, 3, log).loadNewestGood();
      expect(loaded?.step).toBe(100);
      const warning = warnings().find((w) => w.includes('step-00000200'));
      expect(warning).toMatch(expected);
      expect(warning).toContain(path.join(dir, 'step-00000200'));
      expect(warning).toMatch(/falling back to the previous checkpoint/);
    });
  }

  it('removes leftovers of interrupted writes and ignores unrelated folders', async () => {
    const dir = path.join(tmp, 'leftovers');
    mkdirSync(path.join(dir, '.tmp-step-00000300-abcd'), { recursive: true });
    writeFileSync(path.join(dir, '.tmp-step-00000300-abcd', 'model.json'), 'half');
    mkdirSync(path.join(dir, 'notes'));
    const { log, warnings } = capturingLogger();
    const store = new CheckpointStore(dir, 3, log);
    await store.open();
    expect(readdirSync(dir)).toEqual(['notes']);
    expect(warnings()[0]).toMatch(/unfinished checkpoint write/);
    expect(await store.loadNewestGood()).toBeUndefined();
  });

  it('refuses file names that would leave the checkpoint folder', async () => {
    const { log } = capturingLogger();
    const store = new CheckpointStore(path.join(tmp, 'names'), 3, log);
    await store.open();
    await expect(store.write(1, [...files(1), { name: '../escape', data: new Uint8Array(1) }], record(1))).rejects.toThrow(/refusing checkpoint file name/);
  });
});

describe('training state and its checkpoint files (peer side)', () => {
  let train: ImageDataset;
  beforeAll(async () => {
    await selectBackend({ force: 'wasm' });
    train = await loadMnist('train');
  });

  async function trained(steps: number): Promise<TrainingState> {
    const job = parseClusterJob({ batchSize: 32, seed: 7 });
    const state = await TrainingState.create(job, train);
    const order = epochOrder(train.count, 7, 0, true);
    for (let step = 1; step <= steps; step++) {
      await trainStep(state.ctx, gatherBatch(train, order, (step - 1) * 32, step * 32));
      state.committedStep = step;
    }
    return state;
  }

  it('flattens weights and optimizer slots, and a fresh state takes them bit for bit', async () => {
    const source = await trained(3);
    const target = await trained(0);
    expect(target.layout.hash).toBe(source.layout.hash);
    const flat = new Float32Array(source.layout.elements);
    await source.exportFlat(flat);
    await target.importFlat(flat, 3);
    const back = new Float32Array(target.layout.elements);
    await target.exportFlat(back);
    expect(sameBits(back, flat)).toBe(true);
    expect(target.committedStep).toBe(3);
    // Adam's step count travels too (bias correction depends on it).
    const iterations = (await target.optimizer.getWeights())[0]!;
    expect(iterations.name).toBe('iter');
    expect(iterations.tensor.dataSync()[0]).toBe(3);
    source.dispose();
    target.dispose();
  });

  it('resets to the exact initial weights, and a reset state continues like a fresh one', async () => {
    const fresh = await trained(0);
    const initial = new Float32Array(fresh.layout.elements);
    await fresh.exportFlat(initial);
    const used = await trained(2);
    await used.resetToInitial();
    const reset = new Float32Array(used.layout.elements);
    await used.exportFlat(reset);
    expect(sameBits(reset, initial)).toBe(true);
    expect(used.committedStep).toBe(0);
    fresh.dispose();
    used.dispose();
  });

  it('exports LayersModel + optimizer files that import into another state exactly', async () => {
    const source = await trained(2);
    const exported = await exportCheckpointFiles(source, 'adam', 0.001);
    expect(exported.map((f) => f.name).sort()).toEqual([MODEL_FILE, WEIGHTS_FILE, OPTIMIZER_FILE, OPTIMIZER_WEIGHTS_FILE].sort());
    const modelJson = JSON.parse(new TextDecoder().decode(exported.find((f) => f.name === MODEL_FILE)!.data)) as tf.io.ModelJSON;
    expect(modelJson.weightsManifest[0]!.paths).toEqual(['weights.bin']);
    const target = await trained(0);
    await importCheckpointFiles(target, exported, 2);
    const a = new Float32Array(source.layout.elements);
    const b = new Float32Array(target.layout.elements);
    await source.exportFlat(a);
    await target.exportFlat(b);
    expect(sameBits(b, a)).toBe(true);

    // A checkpoint of another model is refused with the reason.
    const other = await TrainingState.create(parseClusterJob({ model: 'cnn', batchSize: 32 }), train);
    await expect(importCheckpointFiles(other, exported, 2)).rejects.toThrow(/does not fit this job's model and optimizer/);
    for (const state of [source, target, other]) state.dispose();
  });
});
