import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMnist, type ImageDataset } from '../shared/data/mnist.js';
import { parseTrainingJob } from '../shared/job/schema.js';
import { createModel } from '../shared/models/create-model.js';
import { registerFileRouter } from '../shared/models/file-io.js';
import { evaluate } from '../peer/trainer/evaluate.js';
import { trainLocally } from '../peer/trainer/local-training.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rp-save-'));
let data: { train: ImageDataset; test: ImageDataset };
let server: http.Server;
let baseUrl: string;

beforeAll(async () => {
  await tf.setBackend('wasm');
  data = { train: await loadMnist('train'), test: await loadMnist('test') };
  // A plain static file server on loopback, so the reload goes through TensorFlow.js's own HTTP loader.
  server = http.createServer((req, res) => {
    const file = path.join(tmp, path.normalize(decodeURIComponent(req.url ?? '/')));
    createReadStream(file)
      .on('error', () => res.writeHead(404).end())
      .pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('saved models', () => {
  it('reload with stock TensorFlow.js and score the same accuracy', async () => {
    const job = parseTrainingJob({ model: 'mlp', maxSteps: 40, epochs: 1, seed: 3 });
    const result = await trainLocally(job, { saveDir: path.join(tmp, 'mlp'), data });
    expect(result.savedTo).toBe(path.join(tmp, 'mlp', 'model.json'));
    expect(result.test.accuracy).toBeGreaterThan(0.8);

    const stock = await tf.loadLayersModel(`${baseUrl}/mlp/model.json`);
    const reloaded = await evaluate(stock, data.test, { batchSize: 1000, outputKind: 'logits', inputShape: [28, 28, 1] });
    expect(reloaded.accuracy).toBe(result.test.accuracy);
    expect(reloaded.loss).toBeCloseTo(result.test.loss, 5);
    stock.dispose();
  });

  it('load through file:// URLs and as a user model for further training', async () => {
    registerFileRouter();
    const viaUrl = await tf.loadLayersModel(`file://${path.join(tmp, 'mlp', 'model.json')}`);
    expect(viaUrl.countParams()).toBe(535818);
    viaUrl.dispose();

    const continued = await trainLocally(parseTrainingJob({ model: path.join(tmp, 'mlp'), maxSteps: 5, seed: 3 }), { data });
    expect(continued.test.accuracy).toBeGreaterThan(0.8); // starts from the saved weights, not from scratch
  });

  it('refuses user models that do not fit the data, or do not exist', async () => {
    const wrong = tf.sequential({ layers: [tf.layers.dense({ inputShape: [5], units: 10 })] });
    await wrong.save(`file://${path.join(tmp, 'wrong')}`);
    wrong.dispose();
    await expect(createModel(path.join(tmp, 'wrong'), { inputShape: [28, 28, 1], numClasses: 10, seed: 1 })).rejects.toThrow(/takes input shape \[5\], but the dataset provides \[28, 28, 1\]/);
    await expect(createModel(path.join(tmp, 'missing'), { inputShape: [28, 28, 1], numClasses: 10, seed: 1 })).rejects.toThrow(/model not found at .*missing: give the path of a TensorFlow\.js model\.json/);
  });
});
