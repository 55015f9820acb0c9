/**
 * Pipeline + data parallel jobs run by the coordinator (`pipeline.replicas`), with real coordinator
 * and peer processes on loopback: 2 replicas of a 2-stage pipeline (4 peers) train to the weights of
 * single-process training on the same global batches and leave a checkpoint stock TensorFlow.js
 * loads; a stage peer of one replica killed with kill -9: the job goes on with one replica at once,
 * takes a new peer in as a second replica again, and finishes.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ClusterJobInput } from '../coordinator/job/cluster-job.js';
import { evaluate } from '../peer/trainer/evaluate.js';
import { loadMnist } from '../shared/data/mnist.js';
import { selectBackend } from '../shared/engine/select-backend.js';
import { ClusterHarness, clusterPerTest, within } from './fixtures/cluster-harness.js';
import { loadOverHttp, referenceWeights, writeJob } from './fixtures/pipeline-cluster-support.js';
import { maxAbsDifference } from './fixtures/pipeline-reference.js';

const newHarness = clusterPerTest();
beforeAll(async () => {
  // The peers' engine (auto picks wasm here): the same arithmetic in this process.
  await selectBackend({ force: 'wasm' });
});

/** "stage/replica" of every assignment a peer logged, by epoch. */
function slotsOf(h: ClusterHarness, peers: ReturnType<ClusterHarness['peer']>[], epoch: number): string[] {
  return peers
    .flatMap((peer) => h.logs(peer, /^assigned a pipeline stage$/))
    .filter((a) => a.epoch === epoch)
    .map((a) => `${String(a.stage)}/${String(a.replica)}`)
    .sort();
}

describe('pipeline jobs with replicas on the coordinator (separate processes)', () => {
  it('2 replicas of a 2-stage pipeline: weights of single-process training on the same global batches, one checkpoint stock tfjs loads', async () => {
    const harness = newHarness();
    const input: ClusterJobInput = { mode: 'pipeline', pipeline: { stages: 2, microBatches: 4, replicas: 2 }, batchSize: 64, maxSteps: 5, checkpoint: { everySteps: 0, everySeconds: 0 }, peers: { joinTimeoutSeconds: 90 } };
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', writeJob(harness.dir, input)]);
    const peers = [harness.peer(port), harness.peer(port), harness.peer(port), harness.peer(port)];
    const reference = referenceWeights(input);
    expect((await within(coordinator.exited, 150_000, 'the replicated pipeline job finishing')).code, coordinator.stderr).toBe(0);

    // Every (stage, replica) pair once, in epoch 1; every stage of both replicas finished.
    expect(slotsOf(harness, peers, 1)).toEqual(['0/0', '0/1', '1/0', '1/1']);
    for (const peer of peers) expect(harness.logs(peer, /^pipeline epoch ended$/).map((e) => e.outcome), peer.name).toEqual(['finished']);
    // Each point of the loss curve is the global batch's: both replicas' slices.
    const curve = harness.metrics();
    expect(curve.map((p) => p.step)).toEqual([1, 2, 3, 4, 5]);
    expect(curve.every((p) => p.worldSize === 2 && (p as unknown as { samples: number }).samples === 64)).toBe(true);

    const result = harness.result();
    expect(result).toMatchObject({ outcome: 'finished', steps: 5, pipeline: { stages: 2, microBatches: 4, replicas: 2 } });
    const model = await loadOverHttp(path.dirname(result.model as string));
    try {
      const scored = await evaluate(model, await loadMnist('test'), { batchSize: 1000, outputKind: 'logits', inputShape: [28, 28, 1] });
      expect(scored.accuracy).toBe(result.accuracy);
      const weights = await Promise.all(model.trainableWeights.map(async (w) => (await w.read().data()) as Float32Array));
      expect(maxAbsDifference(await reference, weights)).toBeLessThanOrEqual(1e-5);
    } finally {
      model.dispose();
    }
    const optimizer = JSON.parse(readFileSync(path.join(result.checkpoint as string, 'optimizer', 'optimizer.json'), 'utf8')) as { stages: unknown[] };
    expect(optimizer.stages).toHaveLength(2);
  });

  it('replicas "auto": starts with the peers there are, and grows by a replica when two more join', async () => {
    const harness = newHarness();
    // Enough steps for two new peers to start and load the job while one replica trains (they
    // joined at step 88 of 400 in a run at load 9–15).
    const steps = 250;
    const input: ClusterJobInput = { mode: 'pipeline', pipeline: { stages: 2, microBatches: 2, replicas: 'auto' }, batchSize: 32, maxSteps: steps, checkpoint: { everySteps: 0, everySeconds: 0 }, peers: { min: 2, max: 4, graceSeconds: 1, joinTimeoutSeconds: 90 } };
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', writeJob(harness.dir, input)]);
    const peers = [harness.peer(port), harness.peer(port)];
    await ClusterHarness.until(() => harness.metrics().some((p) => p.step >= 1), 120_000, 'one replica training');
    peers.push(harness.peer(port), harness.peer(port));
    expect((await within(coordinator.exited, 150_000, 'the job finishing')).code, coordinator.stderr).toBe(0);

    const starts = harness.logs(coordinator, /^epoch \d+ starts at step/);
    expect(starts[0]).toMatchObject({ epoch: 1, replicas: 1, source: 'fresh', startStep: 0 });
    // The newcomers wait for a checkpoint of an agreed step, then train as replica 1 from it.
    expect(starts.at(-1)).toMatchObject({ replicas: 2, source: 'checkpoint' });
    expect(slotsOf(harness, peers, starts.at(-1)!.epoch as number)).toEqual(['0/0', '0/1', '1/0', '1/1']);
    expect(harness.result()).toMatchObject({ outcome: 'finished', steps });
    const curve = harness.metrics();
    expect(curve.map((p) => p.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    expect(curve.at(-1)!.worldSize).toBe(2);
  });

  it('kill -9 of a stage peer of one replica: training goes on with one replica from the checkpoint, grows back to two when a new peer joins, and finishes', async () => {
    const harness = newHarness();
    // Enough steps for the replacement to start and load the job while one replica trains alone
    // (40 were not: one replica ran steps 9–40 in 2 s at load 10).
    const steps = 200;
    const input: ClusterJobInput = { mode: 'pipeline', pipeline: { stages: 2, microBatches: 2, replicas: 2 }, batchSize: 32, maxSteps: steps, checkpoint: { everySteps: 10, everySeconds: 0 }, peers: { joinTimeoutSeconds: 90, waitSeconds: 60 }, stepTimeoutSeconds: 20 };
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', writeJob(harness.dir, input)]);
    const peers = [harness.peer(port), harness.peer(port), harness.peer(port), harness.peer(port)];
    // Killed once the checkpoint of step 10 is on disk (before it, survivors at different steps start fresh).
    await ClusterHarness.until(() => existsSync(path.join(harness.runDir, 'checkpoints', 'step-00000010')), 120_000, 'the checkpoint of step 10');
    const victim = peers.find((peer) => harness.logs(peer, /^assigned a pipeline stage$/).some((a) => a.epoch === 1 && a.stage === 1 && a.replica === 1))!;
    victim.signal('SIGKILL');
    const before = harness.metrics();
    await ClusterHarness.until(() => harness.logs(coordinator, /^training with 1 of 2 replicas/).length > 0, 60_000, 'the coordinator going on with one replica');
    const shrunk = harness.logs(coordinator, /^training with 1 of 2 replicas/)[0]!.epoch as number;
    const replacement = harness.peer(port, { name: 'replacement' });
    expect((await within(coordinator.exited, 180_000, 'the job finishing')).code, coordinator.stderr).toBe(0);

    // The survivors of replica 0 trained alone, from the newest checkpoint or their memory.
    const starts = harness.logs(coordinator, /^epoch \d+ starts at step/);
    const alone = starts.find((s) => s.epoch === shrunk)!;
    expect(alone.replicas).toBe(1);
    expect(['checkpoint', 'memory']).toContain(alone.source);
    // Then the new peer and the survivor of replica 1 joined as replica 1, from the checkpoint of the agreed stop.
    const grown = starts.find((s) => (s.epoch as number) > shrunk)!;
    expect(grown).toMatchObject({ replicas: 2, source: 'checkpoint' });
    const everyone = [...peers.filter((peer) => peer !== victim), replacement];
    expect(slotsOf(harness, everyone, grown.epoch as number)).toEqual(['0/0', '0/1', '1/0', '1/1']);
    expect(harness.logs(replacement, /^assigned a pipeline stage$/).map((a) => a.epoch)).toEqual([grown.epoch]);

    const result = harness.result();
    expect(result).toMatchObject({ outcome: 'finished', steps });
    expect(result.accuracy as number).toBeGreaterThan(0.6);
    // Every step is in the curve; steps trained before the kill and redone after it have the same loss.
    const curve = harness.metrics();
    expect(new Set(curve.map((p) => p.step))).toEqual(new Set(Array.from({ length: steps }, (_, i) => i + 1)));
    for (const point of before.filter((p) => p.step > (alone.startStep as number))) {
      const again = curve.filter((p) => p.step === point.step).at(-1)!;
      expect(Math.abs(again.loss - point.loss), `loss of step ${point.step}`).toBeLessThanOrEqual(1e-5);
    }
  });
});
