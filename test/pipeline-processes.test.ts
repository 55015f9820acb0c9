import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMnist, type ImageDataset } from '../shared/data/mnist.js';
import { createOptimizer } from '../peer/trainer/optimizer.js';
import { launchStages, type StageOutcome } from '../peer/pipeline/launch/launch-stages.js';
import { PIPELINE_JOB_ENV, stageFilePrefix, type PipelineJobInput, type StageRunReport } from '../peer/pipeline/launch/pipeline-job.js';
import { maxAbsDifference, referenceTraining, zooFactory } from './fixtures/pipeline-reference.js';

const STAGE_SCRIPT = path.join(import.meta.dirname, 'fixtures', 'pipeline-stage.ts');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rp-pipeline-'));
let mnist: ImageDataset;

beforeAll(async () => {
  await tf.setBackend('cpu');
  mnist = await loadMnist('train');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function launch(job: PipelineJobInput, stages: number, options: { replicas?: number; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<StageOutcome[]> {
  return launchStages({
    stages,
    collectFailures: options.env !== undefined,
    ...(options.replicas ? { replicas: options.replicas } : {}),
    timeoutMs: options.timeoutMs ?? 100_000,
    spawn: (_place, env) =>
      spawn(process.execPath, ['--import', 'tsx', STAGE_SCRIPT], {
        env: { ...process.env, ...env, ...options.env, [PIPELINE_JOB_ENV]: JSON.stringify(job), RINGPIPE_LOG_LEVEL: 'warn' },
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
  });
}

/** The whole model's weights after run `run`: each stage's file, in stage order. */
function pipelineWeights(outDir: string, run: number, stages: number, replica = 0): Float32Array[] {
  const weights: Float32Array[] = [];
  for (let stage = 0; stage < stages; stage++) {
    const prefix = stageFilePrefix(outDir, run, stage, replica);
    const manifest = JSON.parse(readFileSync(`${prefix}.weights.json`, 'utf8')) as { name: string; shape: number[] }[];
    const bytes = readFileSync(`${prefix}.weights.bin`);
    const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    let offset = 0;
    for (const { shape } of manifest) {
      const size = shape.reduce((a, b) => a * b, 1);
      weights.push(all.subarray(offset, offset + size));
      offset += size;
    }
  }
  return weights;
}

function runReports(outcomes: StageOutcome[]): StageRunReport[] {
  return outcomes.flatMap((o) => o.reports.filter((r) => r.kind === 'run').map((r) => r.data as StageRunReport));
}

const runs = [
  { microBatches: 4, schedule: 'gpipe', rematerialize: false },
  { microBatches: 4, schedule: 'gpipe', rematerialize: true },
  // The first stage also multiplies its deferred weight gradients every 12 rows here (besides while it waits, the default).
  { microBatches: 3, schedule: '1f1b', rematerialize: false, settleRows: 12 },
] as const;

describe('pipeline stages in separate processes over authenticated links', () => {
  for (const stages of [2, 3]) {
    it(`${stages} stages give the weights of single-process training (GPipe, GPipe re-materialised, 1F1B)`, async () => {
      const outDir = path.join(tmp, `k${stages}`);
      const job: PipelineJobInput = { model: 'mlp', seed: 7, data: 'mnist', batchSize: 24, steps: 3, backend: 'cpu', runs: [...runs], outDir, receiveTimeoutMs: 30_000 };
      const [outcomes, reference] = await Promise.all([
        launch(job, stages),
        referenceTraining({ makeModel: zooFactory('mlp', 7, [28, 28, 1]), data: mnist, batchSize: 24, steps: 3, seed: 7, dataPipeline: true, makeOptimizer: () => createOptimizer({ optimizer: 'adam', learningRate: 0.001 }) }),
      ]);
      const reports = runReports(outcomes);
      for (const [run, settings] of runs.entries()) {
        const difference = maxAbsDifference(reference.weights, pipelineWeights(outDir, run, stages));
        expect(difference, `run ${run} (${JSON.stringify(settings)})`).toBeLessThanOrEqual(1e-5);
        const last = reports.find((r) => r.run === run && r.stage === stages - 1)!;
        last.losses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]!)).toBeLessThanOrEqual(1e-5));
        // Balanced by parameters: [flatten + dense 512 | dense 256 + dense 10] or [… | dense 256 | dense 10].
        expect(last.balance).toEqual(stages === 2 ? [2, 2] : [2, 1, 1]);
      }
      const peak = (run: number, stage: number) => reports.find((r) => r.run === run && r.stage === stage)!;
      for (let stage = 0; stage < stages; stage++) {
        expect(peak(0, stage).peakInFlight).toBe(4);
        expect(peak(2, stage).peakInFlight).toBe(Math.min(stages - stage, 3));
        expect(peak(1, stage).peakHeldBytes).toBeLessThan(peak(0, stage).peakHeldBytes);
      }
    });
  }

  it('2 replicas × 2 stages (pipeline + data parallel, ring all-reduce) give the weights of single-process training on the whole batch', async () => {
    const outDir = path.join(tmp, 'dp');
    const job: PipelineJobInput = { model: 'mlp', seed: 9, data: 'mnist', batchSize: 12, steps: 3, backend: 'cpu', runs: [{ microBatches: 3 }], outDir, receiveTimeoutMs: 30_000 };
    const [, reference] = await Promise.all([
      launch(job, 2, { replicas: 2 }),
      referenceTraining({ makeModel: zooFactory('mlp', 9, [28, 28, 1]), data: mnist, batchSize: 24, steps: 3, seed: 9, dataPipeline: true, makeOptimizer: () => createOptimizer({ optimizer: 'adam', learningRate: 0.001 }) }),
    ]);
    for (const replica of [0, 1]) {
      expect(maxAbsDifference(reference.weights, pipelineWeights(outDir, 0, 2, replica)), `replica ${replica}`).toBeLessThanOrEqual(1e-5);
    }
  });

  it('a stage dying mid-run makes both neighbours fail fast with a link error, not wait for it', async () => {
    const job: PipelineJobInput = { model: 'mlp', seed: 1, data: { synthetic: 256 }, batchSize: 16, steps: 50, backend: 'cpu', runs: [{ microBatches: 2 }], receiveTimeoutMs: 60_000 };
    const outcomes = await launch(job, 3, { env: { PIPELINE_TEST_DIE_STAGE: '1', PIPELINE_TEST_DIE_STEP: '2' } });
    const [first, dead, last] = outcomes;
    expect(dead!.failure).toMatch(/stage 1 exited with code 3/);
    for (const survivor of [first!, last!]) {
      expect(survivor.failure).toMatch(/failed: .*(closed|connection lost)/);
      // The receive timeout is 60 s: a survivor that waited for it would be hanging on the dead stage.
      expect(survivor.exitedAfterMs - dead!.exitedAfterMs).toBeLessThan(10_000);
    }
  });
});
