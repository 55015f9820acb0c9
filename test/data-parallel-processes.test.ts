import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchRing } from '../peer/allreduce/launch/launch-ring.js';

const RANK_SCRIPT = path.join(import.meta.dirname, 'fixtures', 'dp-rank.ts');
let outDir: string;

beforeAll(async () => {
  outDir = await mkdtemp(path.join(os.tmpdir(), 'ringpipe-dp-'));
});
afterAll(async () => {
  await rm(outDir, { recursive: true, force: true });
});

interface Run {
  name: string;
  worldSize: number;
  env?: Record<string, string>;
}

/** A small job: MLP, a 64-sample global batch (3 ranks get 21/21/22), a handful of steps. */
const JOB = { model: 'mlp', batchSize: 64, maxSteps: 6, epochs: 1, seed: 7, optimizer: 'adam', learningRate: 0.001, backend: 'wasm' };

function launch(run: Run, job: object = JOB) {
  const dir = path.join(outDir, run.name);
  return {
    dir,
    outcome: import('node:fs/promises')
      .then((fs) => fs.mkdir(dir, { recursive: true }))
      .then(() =>
        launchRing({
          worldSize: run.worldSize,
          timeoutMs: 100_000,
          collectFailures: Boolean(run.env?.DP_TEST_ODD_RANK),
          spawn: (_rank, env) =>
            spawn(process.execPath, ['--import', 'tsx', RANK_SCRIPT], {
              env: { ...process.env, ...env, ...run.env, DP_TEST_JOB: JSON.stringify(job), DP_TEST_OUT: dir, RINGPIPE_LOG_LEVEL: 'warn' },
              stdio: ['pipe', 'pipe', 'pipe'],
            }),
        }),
      ),
  };
}

async function weights(dir: string, rank: number): Promise<Float32Array> {
  const bytes = await readFile(path.join(dir, `rank-${rank}.bin`));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('data-parallel training across processes', () => {
  it('2 and 3 replicas end with the weights of single-process training on the same global batch (≤ 1e-5), bit-identical to each other', async () => {
    // All three runs at once: each process is light, and the wall time adds up otherwise.
    const single = launch({ name: 'single', worldSize: 1 });
    const two = launch({ name: 'two', worldSize: 2 });
    // 2 replicas: the defaults, and the backward pass overlapped with the exchange in 256 KiB buckets
    // (the first layer's weight cut between rows); 3, threaded data plane: Adam inside the all-reduce
    // (three uneven segments, cut inside variables).
    const overlapped = launch({ name: 'overlapped', worldSize: 2, env: { DP_TEST_BUCKET_BYTES: String(256 * 1024), DP_TEST_OVERLAP: '1' } });
    const three = launch({ name: 'three', worldSize: 3, env: { DP_TEST_DATA_PLANE: 'tcp-threaded', DP_TEST_SHARDED: '1' } });
    const [, twoOutcome, overlappedOutcome, threeOutcome] = await Promise.all([single.outcome, two.outcome, overlapped.outcome, three.outcome]);
    const reference = await weights(single.dir, 0);
    for (const [run, worldSize] of [[two, 2], [overlapped, 2], [three, 3]] as const) {
      const replicas = await Promise.all(Array.from({ length: worldSize }, (_, r) => weights(run.dir, r)));
      for (const replica of replicas.slice(1)) expect(Buffer.from(replica.buffer, replica.byteOffset, replica.byteLength).equals(Buffer.from(replicas[0]!.buffer, replicas[0]!.byteOffset, replicas[0]!.byteLength))).toBe(true);
      const difference = maxAbsDifference(replicas[0]!, reference);
      console.log(`${worldSize} replicas vs single process: max |Δw| = ${difference.toExponential(2)} over ${reference.length} weights`);
      expect(difference).toBeLessThanOrEqual(1e-5);
    }
    const singleResult = (await single.outcome)[0]!.reports.find((r) => r.kind === 'result')?.data as { weightsHash: string; initialWeightsHash: string };
    // Training moved the weights: comparing untouched weights would pass trivially.
    expect(singleResult.weightsHash).not.toBe(singleResult.initialWeightsHash);
    for (const outcome of [twoOutcome, overlappedOutcome, threeOutcome]) {
      const results = outcome.map((o) => o.reports.find((r) => r.kind === 'result')?.data as { weightsHash: string; initialWeightsHash: string; steps: number });
      expect(new Set(results.map((r) => r.weightsHash)).size).toBe(1);
      // Replicas start from rank 0's weights, which are the single process's (same seed).
      expect(results[0]!.initialWeightsHash).toBe(singleResult.initialWeightsHash);
      expect(results[0]!.steps).toBe(JOB.maxSteps);
      // Every step reports where its time went.
      const step = outcome[0]!.reports.find((r) => r.kind === 'step')?.data as Record<string, number>;
      for (const field of ['computeMs', 'commMs', 'dataWaitMs']) expect(step[field]).toBeGreaterThanOrEqual(0);
      expect(step.wireBytes).toBeGreaterThan(0);
    }
    // The local slices of the 3-replica run add up to the global batch.
    const slices = threeOutcome.map((o) => (o.reports.find((r) => r.kind === 'step')?.data as { localBatch: number }).localBatch);
    expect(slices.reduce((a, b) => a + b, 0)).toBe(JOB.batchSize);
  });

  it('stops every replica with a clear error when one of them diverges', async () => {
    // Each replica applies the whole update itself, so a different one diverges.
    const diverging = launch({ name: 'diverge', worldSize: 2, env: { DP_TEST_ODD_RANK: '1' } });
    // With the sharded update the weights cannot diverge: the settings are compared before step 1.
    const refused = launch({ name: 'refuse', worldSize: 2, env: { DP_TEST_ODD_RANK: '1', DP_TEST_SHARDED: '1' } });
    for (const outcome of await diverging.outcome) {
      expect(outcome.failure).toMatch(/replicas diverged by step 2: weights of rank 1 \(hash [0-9a-f]{16}\) differ from rank 0/);
    }
    for (const outcome of await refused.outcome) {
      expect(outcome.failure).toMatch(/replicas run different optimizer settings: rank 1 \(learningRate 0\.0015, .*\) differ from rank 0 \(learningRate 0\.001, /);
    }
  });
});
