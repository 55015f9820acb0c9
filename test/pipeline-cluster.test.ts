/**
 * Pipeline jobs run by the coordinator, with real coordinator and peer processes on loopback: a
 * 2-stage job trains, checkpoints one whole model that stock TensorFlow.js loads, and its weights are
 * those of single-process training on the same global batches; a stage killed with kill -9 is
 * replaced and training resumes from the last checkpoint, as it does when the coordinator is killed
 * and restarted; too few peers is a clear error.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ClusterJobInput } from '../coordinator/job/cluster-job.js';
import { evaluate } from '../peer/trainer/evaluate.js';
import { loadMnist } from '../shared/data/mnist.js';
import { selectBackend } from '../shared/engine/select-backend.js';
import { freePort } from './deploy-support/local-http.js';
import { ClusterHarness, clusterPerTest, within } from './fixtures/cluster-harness.js';
import { loadOverHttp, referenceWeights, writeJob } from './fixtures/pipeline-cluster-support.js';
import { maxAbsDifference } from './fixtures/pipeline-reference.js';

const newHarness = clusterPerTest();
beforeAll(async () => {
  // The peers' engine (auto picks wasm here, with ringpipe's kernels): the same arithmetic in this process.
  await selectBackend({ force: 'wasm' });
});

/** Steps of the checkpoint folders in a run folder. */
function checkpointSteps(runDir: string): number[] {
  try {
    return readdirSync(path.join(runDir, 'checkpoints')).filter((name) => /^step-\d+$/.test(name)).map((name) => Number(name.slice(5)));
  } catch {
    return [];
  }
}

describe('pipeline jobs on the coordinator (separate processes)', () => {
  it('a 2-stage job finishes; its one checkpoint loads with stock tf.loadLayersModel, scores the reported accuracy, and holds the weights of single-process training', async () => {
    const harness = newHarness();
    const input: ClusterJobInput = { mode: 'pipeline', pipeline: { stages: 2, microBatches: 4 }, batchSize: 64, maxSteps: 5, checkpoint: { everySteps: 0, everySeconds: 0 }, peers: { joinTimeoutSeconds: 90 } };
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', writeJob(harness.dir, input)]);
    const peers = [harness.peer(port), harness.peer(port)];
    const reference = referenceWeights(input);
    expect((await within(coordinator.exited, 150_000, 'the pipeline job finishing')).code, coordinator.stderr).toBe(0);

    // Stages 0 and 1 of epoch 1, split as the coordinator decided.
    const assigned = peers.flatMap((peer) => harness.logs(peer, /^assigned a pipeline stage$/));
    expect(assigned.map((a) => a.stage).sort()).toEqual([0, 1]);
    expect(assigned.every((a) => a.epoch === 1 && a.stages === 2)).toBe(true);
    const curve = harness.metrics();
    expect(curve.map((p) => p.step)).toEqual([1, 2, 3, 4, 5]);

    const result = harness.result();
    expect(result).toMatchObject({ outcome: 'finished', steps: 5, pipeline: { stages: 2, microBatches: 4, schedule: 'gpipe', theoreticalBubble: 0.2 } });
    const model = await loadOverHttp(path.dirname(result.model as string));
    try {
      const scored = await evaluate(model, await loadMnist('test'), { batchSize: 1000, outputKind: 'logits', inputShape: [28, 28, 1] });
      expect(scored.accuracy).toBe(result.accuracy);
      const weights = await Promise.all(model.trainableWeights.map(async (w) => (await w.read().data()) as Float32Array));
      expect(maxAbsDifference(await reference, weights)).toBeLessThanOrEqual(1e-5);
    } finally {
      model.dispose();
    }
    // The optimizer state of every stage is in the same checkpoint.
    const optimizer = JSON.parse(readFileSync(path.join(result.checkpoint as string, 'optimizer', 'optimizer.json'), 'utf8')) as { format: string; stages: unknown[] };
    expect(optimizer.format).toBe('ringpipe-pipeline-optimizer/1');
    expect(optimizer.stages).toHaveLength(2);
  });

  it('kill -9 of a stage peer: the job waits, saying so; a replacement joins and training resumes from the last checkpoint, redoing the same steps exactly', async () => {
    const harness = newHarness();
    const input: ClusterJobInput = { mode: 'pipeline', batchSize: 32, maxSteps: 60, checkpoint: { everySteps: 4, everySeconds: 0 }, peers: { waitSeconds: 90, joinTimeoutSeconds: 90 }, stepTimeoutSeconds: 20 };
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', writeJob(harness.dir, input)]);
    const peers = [harness.peer(port), harness.peer(port)];
    await ClusterHarness.until(() => harness.metrics().some((p) => p.step >= 10), 120_000, 'the pipeline passing step 10');
    const victim = peers.find((peer) => harness.logs(peer, /^assigned a pipeline stage$/).some((a) => a.stage === 1))!;
    victim.signal('SIGKILL');
    const before = harness.metrics();
    const newestOnDisk = Math.max(0, ...checkpointSteps(harness.runDir));
    await ClusterHarness.until(() => harness.logs(coordinator, /fewer peers than the 2 stages of the pipeline/).length > 0, 60_000, 'the coordinator saying it waits for a replacement');
    harness.peer(port, { name: 'replacement' });
    expect((await within(coordinator.exited, 180_000, 'the job finishing after the replacement joined')).code, coordinator.stderr).toBe(0);

    const starts = harness.logs(coordinator, /^epoch \d+ starts at step/);
    expect(starts[0]).toMatchObject({ epoch: 1, source: 'fresh', startStep: 0 });
    const resumed = starts.at(-1)!;
    expect(resumed.source).toBe('checkpoint');
    expect((resumed.startStep as number) % 4).toBe(0);
    expect(resumed.startStep as number).toBeGreaterThan(0);
    // The newest checkpoint: the one on disk at the kill, or one whose parts were still in flight.
    expect(resumed.startStep as number).toBeGreaterThanOrEqual(newestOnDisk);
    const result = harness.result();
    expect(result).toMatchObject({ outcome: 'finished', steps: 60 });
    expect(result.accuracy as number).toBeGreaterThan(0.7);

    // Every step is in the curve; steps trained before the kill and redone after it have the same loss.
    const curve = harness.metrics();
    expect(new Set(curve.map((p) => p.step))).toEqual(new Set(Array.from({ length: 60 }, (_, i) => i + 1)));
    const redone = before.filter((p) => p.step > (resumed.startStep as number));
    for (const point of redone) {
      const again = curve.filter((p) => p.step === point.step).at(-1)!;
      expect(Math.abs(again.loss - point.loss), `loss of step ${point.step}`).toBeLessThanOrEqual(1e-5);
    }
  });

  it('kill -9 of the coordinator: the stages rejoin the restarted coordinator, which re-forms the pipeline from the newest checkpoint', async () => {
    const harness = newHarness();
    const every = 8;
    const job = writeJob(harness.dir, { mode: 'pipeline', batchSize: 32, maxSteps: 40, checkpoint: { everySteps: every, everySeconds: 0 }, peers: { joinTimeoutSeconds: 90 } });
    const port = await freePort();
    const args = ['--port', String(port), '--job', job];
    const first = await harness.coordinator(args);
    const peers = [harness.peer(port, { args: ['--reconnect-timeout', '60'] }), harness.peer(port, { args: ['--reconnect-timeout', '60'] })];
    const lastStep = (): number => harness.metrics().at(-1)?.step ?? 0;
    // Killed in the middle of a checkpoint interval, once the checkpoint of step 16 is on disk (its
    // parts are joined and written while training goes on: on a loaded machine it lands steps later).
    await ClusterHarness.until(() => lastStep() >= 20 && checkpointSteps(harness.runDir).includes(16), 120_000, 'step 20 and the checkpoint of step 16 on disk');
    first.child.signal('SIGKILL');
    await first.child.exited;
    const stepAtKill = lastStep();
    const newestOnDisk = Math.max(0, ...checkpointSteps(harness.runDir));
    // Stage 0 reads the data: its part of the checkpoint carried its iterator's position, which the resume starts from.
    const saved = JSON.parse(readFileSync(path.join(harness.runDir, 'checkpoints', `step-${String(newestOnDisk).padStart(8, '0')}`, 'training-state.json'), 'utf8'));
    expect(saved.dataPosition).toMatchObject({ epoch: 0, index: newestOnDisk * 32, pipeline: expect.stringMatching(/^mnist:train \(\d+ samples\) \| shuffle buffer \d+ seed \d+ \| batch 32$/) });

    const second = await harness.coordinator(args, { name: 'coordinator-2' });
    expect((await within(second.child.exited, 150_000, 'the resumed pipeline finishing')).code, second.child.stderr).toBe(0);
    for (const peer of peers) expect((await within(peer.exited, 20_000, `${peer.name} exiting`)).code, peer.name).toBe(0);
    const resumedFrom = harness.logs(second.child, /^resuming from the checkpoint of step \d+$/)[0]?.step as number;
    expect(resumedFrom % every).toBe(0);
    // The newest checkpoint on disk at the kill: nothing older, however far training had gone since.
    expect(resumedFrom).toBe(newestOnDisk);
    expect(resumedFrom, `killed at step ${stepAtKill}`).toBeGreaterThanOrEqual(16);
    expect(harness.logs(second.child, /^epoch 1 starts at step/)[0]).toMatchObject({ source: 'checkpoint', startStep: resumedFrom });
    expect(harness.result()).toMatchObject({ outcome: 'finished', steps: 40, resumedFrom });
  });

  it('SIGUSR2 checkpoints every stage after one agreed step; pause and resume (dashboard) continue from memory; Ctrl+C checkpoints again and stops', async () => {
    const harness = newHarness();
    const job = writeJob(harness.dir, { mode: 'pipeline', batchSize: 32, maxSteps: 5000, checkpoint: { everySteps: 0, everySeconds: 0 }, peers: { joinTimeoutSeconds: 90 } });
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', job, '--dashboard-port', '0']);
    const [, dashboard, token] = (await coordinator.waitForLine(/^dashboard (http:\/\/\S+)\/#token=(\S+)$/, 10_000)) as unknown as [string, string, string];
    const control = async (action: 'pause' | 'resume'): Promise<number> =>
      (await fetch(`${dashboard}/api/control/${action}`, { method: 'POST', headers: { authorization: `Bearer ${decodeURIComponent(token)}`, 'content-type': 'application/json' }, body: '{}' })).status;
    const peers = [harness.peer(port), harness.peer(port)];
    const lastStep = (): number => harness.metrics().at(-1)?.step ?? 0;
    const checkpoints = (): number[] => checkpointSteps(harness.runDir);
    await ClusterHarness.until(() => lastStep() >= 5, 120_000, 'step 5');
    // The last stage reports the share of each mini-batch it classified right (the dashboard's accuracy chart).
    const scrape = await (await fetch(`${dashboard}/metrics`, { headers: { authorization: `Bearer ${decodeURIComponent(token)}` } })).text();
    const accuracy = Number(/^ringpipe_train_accuracy (\S+)$/m.exec(scrape)?.[1]);
    expect(accuracy).toBeGreaterThan(0);
    expect(accuracy).toBeLessThanOrEqual(1);
    expect(Math.abs(accuracy * 32 - Math.round(accuracy * 32))).toBeLessThan(1e-6);
    coordinator.signal('SIGUSR2');
    await ClusterHarness.until(() => checkpoints().length > 0, 60_000, 'the on-demand checkpoint');
    const agreed = harness.logs(coordinator, /^every stage will checkpoint after step \d+$/)[0]!.step as number;
    expect(checkpoints()).toEqual([agreed]);

    // Pause: every stage stops after one agreed step; resume: the next epoch starts from their memory.
    expect(await control('pause')).toBe(200);
    await ClusterHarness.until(() => harness.logs(coordinator, /^every stage will stop after step \d+$/).length > 0, 30_000, 'the agreed stop');
    const stoppedAt = harness.logs(coordinator, /^every stage will stop after step \d+$/)[0]!.step as number;
    await ClusterHarness.until(() => peers.every((peer) => harness.logs(peer, /^pipeline epoch ended$/).some((e) => e.outcome === 'stopped' && e.committedStep === stoppedAt)), 30_000, `both stages stopping after step ${stoppedAt}`);
    expect(await control('resume')).toBe(200);
    await ClusterHarness.until(() => harness.logs(coordinator, /^epoch 2 starts at step/).length > 0, 30_000, 'epoch 2');
    expect(harness.logs(coordinator, /^epoch 2 starts at step/)[0]).toMatchObject({ source: 'memory', startStep: stoppedAt });

    await ClusterHarness.until(() => lastStep() >= stoppedAt + 3, 60_000, `step ${stoppedAt + 3}`);
    const curve = harness.metrics().map((p) => p.step);
    expect(curve).toEqual(Array.from({ length: curve.length }, (_, i) => i + 1));
    coordinator.signal('SIGINT');
    expect((await within(coordinator.exited, 60_000, 'the coordinator stopping')).code).toBe(130);
    const result = harness.result();
    expect(result.outcome).toBe('cancelled');
    expect(Math.max(...checkpoints())).toBeGreaterThan(agreed);
    expect(result.checkpoint).toMatch(new RegExp(`step-0*${Math.max(...checkpoints())}$`));
    for (const peer of peers) await within(peer.exited, 20_000, `${peer.name} leaving`);
  });

  it('with fewer peers than stages the job waits, then gives up naming what it needs', async () => {
    const harness = newHarness();
    const job = writeJob(harness.dir, { mode: 'pipeline', pipeline: { stages: 2 }, maxSteps: 3, peers: { joinTimeoutSeconds: 6 } });
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', job]);
    harness.peer(port, { name: 'lonely-peer' });
    expect((await within(coordinator.exited, 60_000, 'the rendezvous timing out')).code).toBe(1);
    expect(coordinator.stderr).toMatch(/gave up after 6 s waiting for peers to start the job \(one per stage of the 2-stage pipeline\): [01] of the 2 needed/);
    expect(coordinator.stderr).toMatch(/npm run peer -- --coordinator 127\.0\.0\.1:\d+/);
  });
});
