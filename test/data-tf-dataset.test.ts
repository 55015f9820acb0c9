import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvSource, Dataset } from '../shared/data/index.js';
import { toTfDataset } from '../shared/data/to-tf-dataset.js';
import { Prng } from '../shared/random/prng.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rp-tfdata-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('toTfDataset', () => {
  it('feeds model.fitDataset, each tf.data epoch being the next epoch of the pipeline', async () => {
    // Two separable classes: label 1 when a + b > 0.
    const random = new Prng(3);
    const rows = ['a,b,label'];
    for (let i = 0; i < 256; i++) {
      const a = random.next() * 2 - 1;
      const b = random.next() * 2 - 1;
      rows.push(`${a},${b},${a + b > 0 ? 1 : 0}`);
    }
    const file = path.join(tmp, 'points.csv');
    writeFileSync(file, rows.join('\n'));
    const source = await csvSource(file, { label: 'label' });
    const batched = Dataset.from(source).shuffle(256, 1).batch(32);

    const dataset = toTfDataset(batched, { inputShape: [2], numClasses: 2 });
    const firstEpochs: number[][] = [];
    for (let e = 0; e < 2; e++) {
      const labels: number[] = [];
      await dataset.forEachAsync((batch) => {
        expect(batch.xs.shape).toEqual([32, 2]);
        expect(batch.ys.shape).toEqual([32, 2]);
        labels.push(...(batch.ys.argMax(-1).dataSync() as Int32Array));
      });
      firstEpochs.push(labels);
    }
    expect(firstEpochs[0]).toHaveLength(256);
    expect(firstEpochs[1]).not.toEqual(firstEpochs[0]); // reshuffled

    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) })] });
    model.compile({ optimizer: tf.train.adam(0.1), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const history = await model.fitDataset(dataset, { epochs: 5, verbose: 0 });
    expect(history.history.acc!.at(-1)).toBeGreaterThan(0.9);
    model.dispose();
  });
});
