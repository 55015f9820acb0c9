/**
 * Cluster jobs (real coordinator and peer processes, loopback) on the session's data pipeline and
 * gradient exchange: a job naming a CSV dataset trains, and its weights equal one process training
 * on the same global batches; a job with `compress: "fp16"` trains to a sane accuracy, and the
 * coordinator's /metrics carries the input stall figure.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { parseClusterJob } from '../coordinator/job/cluster-job.js';
import { trainingPlan } from '../coordinator/job/training-plan.js';
import { GlobalBatches } from '../peer/session/global-batches.js';
import { TrainingState } from '../peer/session/training-state.js';
import { trainStep } from '../peer/trainer/train-step.js';
import { openJobData } from '../shared/data/open-dataset.js';
import { classifyStall } from '../shared/data/stall-verdict.js';
import { selectBackend } from '../shared/engine/select-backend.js';
import { loadModel } from '../shared/models/file-io.js';
import { Prng } from '../shared/random/prng.js';
import { clusterPerTest, ClusterHarness, within } from './fixtures/cluster-harness.js';

const newCluster = clusterPerTest();

/** Three well-separated 4-D blobs, 200 rows each, labelled by name. */
function blobsCsv(file: string): void {
  const prng = new Prng(3);
  const centres = [
    [0, 0, 0, 0],
    [3, 3, 0, 0],
    [0, 3, 3, 3],
  ];
  const names = ['north', 'east', 'west'];
  const rows = Array.from({ length: 600 }, (_, i) => [...centres[i % 3]!.map((c) => (c + prng.next() - 0.5).toFixed(4)), names[i % 3]].join(','));
  writeFileSync(file, `a,b,c,d,region\n${rows.join('\n')}\n`);
}

describe('cluster jobs on the data pipeline and the data-parallel exchange (processes)', () => {
  it('a job naming a CSV dataset trains on 2 peers, and ends with the weights of one process training on the same global batches (≤ 1e-5)', async () => {
    const harness = newCluster();
    const csv = path.join(harness.dir, 'regions.csv');
    blobsCsv(csv);
    const input = { model: 'mlp', dataset: { kind: 'csv', train: csv, label: 'region' }, batchSize: 32, epochs: 2, optimizer: 'sgd', learningRate: 0.05, seed: 9, backend: 'wasm', peers: { min: 2, max: 2, graceSeconds: 0 }, checkpoint: { everySteps: 0, everySeconds: 0 } };
    const jobFile = path.join(harness.dir, 'job.json');
    writeFileSync(jobFile, JSON.stringify(input));
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', jobFile]);
    harness.peer(port);
    harness.peer(port);
    expect((await within(coordinator.exited, 90_000, 'the CSV job finishing')).code, coordinator.stderr).toBe(0);
    const result = harness.result();
    // 540 training rows (60 held out), global batch 32: 16 steps per epoch.
    expect(result).toMatchObject({ outcome: 'finished', steps: 32 });
    expect(result.accuracy as number).toBeGreaterThan(0.9);
    expect(harness.metrics().every((p) => p.worldSize === 2)).toBe(true);

    // The same job in this process: same data, same initial weights, the whole global batch per step.
    await selectBackend({ force: 'wasm' });
    const job = parseClusterJob(input);
    const data = await openJobData(job.dataset);
    const plan = trainingPlan(job, data.trainCount);
    const state = await TrainingState.create(job, data);
    const stream = new GlobalBatches(data.train, plan, job.seed, 0).open(0, 1, 0);
    for (let step = 1; step <= plan.totalSteps; step++) await trainStep(state.ctx, await stream.next());
    await stream.close();
    const trained = await loadModel(result.model as string);
    const maxDiff = Math.max(
      ...trained.getWeights().map((w: tf.Tensor, i: number) => {
        const a = w.dataSync() as Float32Array;
        const b = state.model.getWeights()[i]!.dataSync() as Float32Array;
        return a.reduce((m: number, v: number, j: number) => Math.max(m, Math.abs(v - b[j]!)), 0);
      }),
    );
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    trained.dispose();
    state.dispose();
  }, 180_000);

  it('compress "fp16" trains MNIST on 2 peers to a sane accuracy; /metrics carries the input stall and its verdict', async () => {
    const harness = newCluster();
    const jobFile = path.join(harness.dir, 'job.json');
    writeFileSync(jobFile, JSON.stringify({ batchSize: 128, compress: 'fp16', bucketMiB: 0.5, peers: { min: 2, max: 2, graceSeconds: 0 }, checkpoint: { everySteps: 0, everySeconds: 0 } }));
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', jobFile, '--max-steps', '60', '--dashboard-port', '0']);
    const url = coordinator.lines.map((line) => /^dashboard (http:\/\/\S+)\/#token=/.exec(line)?.[1]).find(Boolean);
    expect(url, coordinator.lines.join('\n')).toBeDefined();
    harness.peer(port);
    harness.peer(port);
    await ClusterHarness.until(() => harness.metrics().length >= 5, 120_000, 'five training steps');
    const families = parsePrometheusTextFormat(await (await fetch(`${url}/metrics`)).text());
    const stall = Number(families.find((f) => f.name === 'ringpipe_input_stall_percent')?.metrics[0]?.value);
    expect(stall).toBeGreaterThanOrEqual(0);
    expect(stall).toBeLessThanOrEqual(100);
    const verdicts = families.find((f) => f.name === 'ringpipe_input_bound')!.metrics;
    expect(verdicts.filter((m) => Number(m.value) === 1).map((m) => m.labels?.verdict)).toEqual([classifyStall(stall)]);

    expect((await within(coordinator.exited, 150_000, 'the fp16 job finishing')).code, coordinator.stderr).toBe(0);
    const result = harness.result();
    expect(result).toMatchObject({ outcome: 'finished', steps: 60 });
    expect(result.accuracy as number).toBeGreaterThan(0.85);
  }, 240_000);
});
