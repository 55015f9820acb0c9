import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { locateModelJson, logitsModel, parameterCount, readModelFiles, sizeOnDisk } from '../coordinator/distillation/model-files.js';
import { DISTILL_DEFAULTS } from '../coordinator/distillation/round-defaults.js';
import { parseRoundSpec, studentSteps } from '../coordinator/distillation/round-spec.js';
import { gapClosed } from '../coordinator/distillation/round-report.js';
import { modelFromFiles, modelToFiles } from '../peer/distillation/model-from-files.js';
import { averagedTeacher } from '../scripts/bench/distill-teacher.js';
import { buildZooModel } from '../shared/models/zoo.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const input = tf.tensor2d([
  [0.5, -1, 2, 0.25],
  [1, 1, -0.5, 3],
]);

/** The logits under a model's softmax: the output of the layer that feeds it. */
function logitsUnder(model: tf.LayersModel, layerName: string): number[] {
  const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer(layerName).output as tf.SymbolicTensor });
  return Array.from((sub.predict(input) as tf.Tensor).dataSync());
}

async function stripped(model: tf.LayersModel): Promise<{ out: number[]; note: string | undefined }> {
  const files = logitsModel({ source: 'test', files: await modelToFiles(model) });
  const rebuilt = await modelFromFiles(files.files, 'test');
  try {
    return { out: Array.from((rebuilt.predict(input) as tf.Tensor).dataSync()), note: files.strippedSoftmax };
  } finally {
    rebuilt.dispose();
  }
}

describe('teacher and student files', () => {
  it('turns a softmax activation of the last layer into logits', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'softmax', name: 'out' })] });
    const { out, note } = await stripped(model);
    const expected = tf.tidy(() => Array.from(tf.add(tf.matMul(input, model.getLayer('out').getWeights()[0]!), model.getLayer('out').getWeights()[1]!).dataSync()));
    out.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
    expect(note).toMatch(/softmax activation replaced by linear/);
  });

  it('removes a trailing Softmax or Activation layer (Sequential and functional models)', async () => {
    const sequential = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, name: 'logits' }), tf.layers.activation({ activation: 'softmax' })] });
    const a = await stripped(sequential);
    expect(a.out).toEqual(logitsUnder(sequential, 'logits'));
    expect(a.note).toMatch(/removed the output softmax layer/);

    const x = tf.input({ shape: [4] });
    const hidden = tf.layers.dense({ units: 5, activation: 'relu', name: 'hidden' }).apply(x) as tf.SymbolicTensor;
    const logits = tf.layers.dense({ units: 3, name: 'logits' }).apply(hidden) as tf.SymbolicTensor;
    const functional = tf.model({ inputs: x, outputs: tf.layers.softmax().apply(logits) as tf.SymbolicTensor });
    const b = await stripped(functional);
    expect(b.out.length).toBe(6);
    b.out.forEach((v, i) => expect(v).toBeCloseTo(logitsUnder(functional, 'logits')[i]!, 5));
    expect(b.note).toMatch(/removed the output softmax layer/);
  });

  it('leaves a logits model as it is', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 })] });
    const { out, note } = await stripped(model);
    expect(note).toBeUndefined();
    expect(out).toEqual(Array.from((model.predict(input) as tf.Tensor).dataSync()));
  });

  it('finds the model of a folder, a checkpoint and a run folder (its newest checkpoint), and counts it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ringpipe-model-files-'));
    dirs.push(dir);
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 })] });
    const files = await modelToFiles(model);
    for (const step of ['step-00000010', 'step-00000020']) {
      const at = path.join(dir, 'run', 'checkpoints', step, 'model');
      await mkdir(at, { recursive: true });
      for (const file of files) await writeFile(path.join(at, file.name), file.data);
    }
    const newest = path.join(dir, 'run', 'checkpoints', 'step-00000020', 'model', 'model.json');
    expect(await locateModelJson(path.join(dir, 'run'))).toBe(newest);
    expect(await locateModelJson(path.join(dir, 'run', 'checkpoints', 'step-00000020'))).toBe(newest);
    expect(await locateModelJson(path.dirname(newest))).toBe(newest);
    const read = await readModelFiles(path.join(dir, 'run'));
    expect(parameterCount(read)).toBe(15);
    expect(sizeOnDisk(read)).toBe(files.reduce((n, f) => n + f.data.byteLength, 0));
    await expect(locateModelJson(path.join(dir, 'nothing'))).rejects.toThrow(/no model at/);
    await expect(locateModelJson(dir)).rejects.toThrow(/holds no model.json/);
  });
});

describe('round settings and report', () => {
  it('names every bad field at once', () => {
    expect(() => parseRoundSpec({ teacher: 't', student: 's', topK: 0, alpha: 2, bogus: 1, peers: { min: 3, max: 2 } })).toThrow(/topK[\s\S]*alpha[\s\S]*bogus/);
    expect(() => parseRoundSpec({ teacher: 't', student: 's', peers: { min: 3, max: 2 } })).toThrow(/peers\.max: must be at least peers\.min/);
    expect(() => parseRoundSpec({ student: 's' })).toThrow(/teacher/);
    // One set of defaults: a round with no settings runs what the benchmark runs.
    expect(parseRoundSpec({ teacher: 't', student: DISTILL_DEFAULTS.student })).toMatchObject({ ...DISTILL_DEFAULTS, maxSteps: 0, baseline: true });
    // A budget in epochs replaces the default budget in steps.
    expect(parseRoundSpec({ teacher: 't', student: 's', epochs: 2 })).toMatchObject({ steps: 0, epochs: 2 });
  });

  it('computes the budget in steps and the gap closed', () => {
    expect(studentSteps({ steps: 0, epochs: 10_000, maxSteps: 1880, batchSize: 128 }, 2000)).toBe(1880);
    expect(studentSteps({ steps: 0, epochs: 2, maxSteps: 0, batchSize: 128 }, 2000)).toBe(30);
    expect(studentSteps({ steps: 1880, epochs: 1, maxSteps: 0, batchSize: 128 }, 2000)).toBe(1880);
    expect(studentSteps({ steps: 1880, epochs: 1, maxSteps: 10, batchSize: 128 }, 2000)).toBe(10);
    expect(() => studentSteps({ steps: 0, epochs: 1, maxSteps: 0, batchSize: 128 }, 100)).toThrow(/larger than/);
    expect(gapClosed(0.98, 0.95, 0.9)).toBeCloseTo(0.625, 10);
    expect(gapClosed(0.9, 0.95, 0.92)).toBeNull();
    expect(gapClosed(0.98, 0.95, undefined)).toBeNull();
  });
});

describe('ensemble-of-checkpoints teacher', () => {
  it('is one model whose logits are exactly the mean of the checkpoints\' logits (dropout left out)', () => {
    const spec = { inputShape: [28, 28, 1], numClasses: 10, seed: 1 };
    const [a, b] = [buildZooModel('mlp-large', spec), buildZooModel('mlp-large', { ...spec, seed: 2 })];
    const ensemble = averagedTeacher(a, [a.getWeights(), b.getWeights()]);
    const x = tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 7);
    const want = tf.div(tf.add(a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor), 2);
    const got = ensemble.predict(x) as tf.Tensor;
    expect(tf.max(tf.abs(tf.sub(want, got))).dataSync()[0]).toBeLessThan(1e-5);
    expect(ensemble.countParams()).toBe(2 * a.countParams());
    expect(ensemble.layers.some((layer) => layer.getClassName() === 'Dropout')).toBe(false);
    tf.dispose([x, want, got]);
    [a, b, ensemble].forEach((m) => m.dispose());
  });
});
