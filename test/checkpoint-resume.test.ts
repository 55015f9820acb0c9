import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterPerTest, within } from './fixtures/cluster-harness.js';

const newCluster = clusterPerTest();

describe('checkpoints and resume (coordinator and peer processes)', () => {
  it('a restarted coordinator resumes from the newest good checkpoint — skipping a corrupt one with a warning naming the file — and the loss curve continues exactly', async () => {
    const harness = newCluster();
    const job = path.join(harness.dir, 'job.json');
    writeFileSync(job, JSON.stringify({ batchSize: 64, seed: 5, peers: { min: 1, max: 1, graceSeconds: 0 }, checkpoint: { everySteps: 10, everySeconds: 0, keep: 3 } }));

    // First run: 30 steps, checkpoints at 10, 20 and 30 (the final one).
    const first = await harness.coordinator(['--port', '0', '--job', job, '--max-steps', '30']);
    harness.peer(first.port);
    expect((await within(first.child.exited, 60_000, 'the first run finishing')).code, first.child.stderr).toBe(0);
    const checkpoints = path.join(harness.runDir, 'checkpoints');
    expect(readdirSync(checkpoints).sort()).toEqual(['step-00000010', 'step-00000020', 'step-00000030']);
    // The peer's iterator reported where it stood, naming its pipeline: that is what a resume starts from.
    const saved = JSON.parse(readFileSync(path.join(checkpoints, 'step-00000020', 'training-state.json'), 'utf8'));
    expect(saved.dataPosition).toMatchObject({ epoch: 0, index: 20 * 64, pipeline: expect.stringMatching(/^mnist:train \(\d+ samples\) \| shuffle buffer \d+ seed 5 \| batch 64$/) });
    const firstCurve = harness.metrics();
    expect(firstCurve.map((p) => p.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));

    // Flip one byte of the newest checkpoint's weights.
    const damaged = path.join(checkpoints, 'step-00000030', 'model', 'weights.bin');
    const bytes = readFileSync(damaged);
    bytes[4096] = bytes[4096]! ^ 0x01;
    writeFileSync(damaged, bytes);

    // Second run on the same job and run folder, now to step 45.
    const second = await harness.coordinator(['--port', '0', '--job', job, '--max-steps', '45'], { name: 'coordinator-2' });
    harness.peer(second.port);
    expect((await within(second.child.exited, 60_000, 'the resumed run finishing')).code, second.child.stderr).toBe(0);

    const warning = harness.logs(second.child).find((entry) => entry.level === 40 && String(entry.msg).includes('step-00000030'));
    expect(String(warning?.msg)).toContain(`${damaged} does not match its sha256 in the manifest`);
    expect(String(warning?.msg)).toMatch(/falling back to the previous checkpoint/);
    expect(harness.logs(second.child, /^resuming from the checkpoint of step 20$/)).toHaveLength(1);
    expect(harness.logs(second.child, /starts at step 20 \(state from checkpoint\)/)).toHaveLength(1);

    // The curve continues from step 21, and the redone steps 21–30 repeat the first run's losses:
    // same weights, same optimizer state, same batches.
    const resumed = harness.metrics().slice(30);
    expect(resumed.map((p) => p.step)).toEqual(Array.from({ length: 25 }, (_, i) => i + 21));
    for (let step = 21; step <= 30; step++) {
      expect(resumed.find((p) => p.step === step)!.loss).toBeCloseTo(firstCurve.find((p) => p.step === step)!.loss, 4);
    }
    const result = harness.result();
    expect(result).toMatchObject({ outcome: 'finished', steps: 45, resumedFrom: 20 });
    expect(readdirSync(checkpoints).sort()).toEqual(['step-00000030', 'step-00000040', 'step-00000045']);
  });

  it('refuses to resume checkpoints written by a different job, saying which fields differ', async () => {
    const harness = newCluster();
    // A valid checkpoint of a job with batch size 64 (its content does not matter for the check).
    const { CheckpointStore } = await import('../coordinator/checkpoint/checkpoint-store.js');
    const { UPLOADED_FILES } = await import('../coordinator/checkpoint/checkpoint-layout.js');
    const { parseClusterJob } = await import('../coordinator/job/cluster-job.js');
    const { createLogger } = await import('../shared/log/logger.js');
    const store = new CheckpointStore(path.join(harness.runDir, 'checkpoints'), 3, createLogger('test', { level: 'silent' }));
    await store.open();
    const saved = parseClusterJob({ batchSize: 64 });
    await store.write(
      5,
      UPLOADED_FILES.map((name) => ({ name, data: new Uint8Array(8) })),
      { step: 5, totalSteps: 10, epoch: 0, dataPosition: { epoch: 0, index: 320 }, rng: { algorithm: 'test', seed: 42, shuffleEpoch: 0 }, membershipEpoch: 1, worldSize: 1, loss: null, job: saved as unknown as Record<string, unknown>, savedAt: new Date().toISOString() },
    );

    const job = path.join(harness.dir, 'job.json');
    writeFileSync(job, JSON.stringify({ batchSize: 32, learningRate: 0.01, peers: { min: 1, max: 1 } }));
    const { ManagedChild } = await import('../scripts/local-cluster/managed-child.js');
    const refused = new ManagedChild({
      name: 'coordinator',
      script: path.join(import.meta.dirname, '..', 'scripts', 'coordinator.ts'),
      args: ['--port', '0', '--host', '127.0.0.1', '--no-mdns', '--job', job, '--run-dir', harness.runDir],
      env: harness.env(),
    });
    harness.children.push(refused);
    expect((await within(refused.exited, 30_000, 'the coordinator refusing')).code).toBe(1);
    expect(refused.stderr).toMatch(/written by a different job \(batchSize: 64 → 32; learningRate: 0\.001 → 0\.01\)/);
    expect(refused.stderr).toMatch(/--fresh/);
  });
});
