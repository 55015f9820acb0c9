import { createReadStream, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMnist } from '../shared/data/mnist.js';
import { evaluate } from '../peer/trainer/evaluate.js';
import { ClusterHarness, within } from './fixtures/cluster-harness.js';

let harness: ClusterHarness | undefined;
afterEach(async () => {
  await harness?.cleanup();
  harness = undefined;
});

describe('local cluster: coordinator and peer processes', () => {
  it('two peers train a job end to end; the checkpoint loads with stock tf.loadLayersModel and scores the reported accuracy', async () => {
    harness = new ClusterHarness();
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--min-peers', '2', '--max-peers', '2', '--max-steps', '40']);
    const peers = [harness.peer(port), harness.peer(port)];
    const exit = await within(coordinator.exited, 90_000, 'the job finishing');
    expect(exit.code, coordinator.stderr).toBe(0);
    for (const peer of peers) expect((await within(peer.exited, 15_000, `${peer.name} exiting`)).code).toBe(0);

    // Ranks 0 and 1 of one epoch, each told the whole topology.
    const assigned = peers.map((peer) => harness!.logs(peer, /^assigned$/)[0]);
    expect(assigned.map((a) => a?.rank).sort()).toEqual([0, 1]);
    expect(assigned.every((a) => a?.epoch === 1 && a.worldSize === 2)).toBe(true);

    // Every step's loss is in the curve, averaged over both slices of the global batch.
    const curve = harness.metrics();
    expect(curve.map((p) => p.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(curve.every((p) => p.worldSize === 2 && Number.isFinite(p.loss))).toBe(true);
    expect(curve.at(-1)!.loss).toBeLessThan(curve[0]!.loss);

    const result = harness.result();
    expect(result.outcome).toBe('finished');
    expect(result.steps).toBe(40);
    expect(result.accuracy as number).toBeGreaterThan(0.8);
    expect(coordinator.lines.join('\n')).toContain(`test accuracy ${((result.accuracy as number) * 100).toFixed(2)}%`);

    // Stock TensorFlow.js, over HTTP, scores exactly the accuracy the cluster reported.
    const modelDir = path.dirname(result.model as string);
    const server = http.createServer((req, res) => {
      createReadStream(path.join(modelDir, path.basename(req.url ?? '/'))).on('error', () => res.writeHead(404).end()).pipe(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await tf.setBackend('wasm');
      const model = await tf.loadLayersModel(`http://127.0.0.1:${(server.address() as AddressInfo).port}/model.json`);
      const scored = await evaluate(model, await loadMnist('test'), { batchSize: 1000, outputKind: 'logits', inputShape: [28, 28, 1] });
      expect(scored.accuracy).toBe(result.accuracy);
      model.dispose();
    } finally {
      server.close();
    }
  });

  it('rendezvous: without peers.min peers it gives up in time, naming who joined and who was refused (wrong secret)', async () => {
    harness = new ClusterHarness();
    const job = path.join(harness.dir, 'job.json');
    writeFileSync(job, JSON.stringify({ peers: { min: 2, max: 3, graceSeconds: 1, joinTimeoutSeconds: 8 }, maxSteps: 5 }));
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', job]);
    const good = harness.peer(port, { name: 'good-peer' });
    const impostor = harness.peer(port, { name: 'impostor', env: { RINGPIPE_SECRET: 'not-the-cluster-secret-at-all-0000' } });

    const impostorExit = await within(impostor.exited, 30_000, 'the peer with the wrong secret giving up');
    expect(impostorExit.code).toBe(1);
    expect(impostor.stderr).toMatch(/secret/i);

    const exit = await within(coordinator.exited, 40_000, 'the rendezvous timing out');
    expect(exit.code).toBe(1);
    const message = coordinator.stderr;
    expect(message).toMatch(/gave up after 8 s waiting for peers to start the job: 1 of the 2 needed \(peers\.min\) are ready/);
    expect(message).toMatch(/ready: good-peer at 127\.0\.0\.1/);
    expect(message).toMatch(/refused at the handshake: refused impostor \(peer\) at 127\.0\.0\.1:\d+: wrong cluster secret/);
    expect(message).toMatch(/npm run peer -- --coordinator 127\.0\.0\.1:\d+/);
    // The peer that did join is told the job is over and leaves.
    const goodExit = await within(good.exited, 15_000, 'the joined peer leaving');
    expect(goodExit.code).toBe(1);
    expect(good.lines.join('\n')).toMatch(/peer stopped: the job ended: gave up/);
  });

  it('refuses a bad job file, naming every bad field', async () => {
    harness = new ClusterHarness();
    const job = path.join(harness.dir, 'bad-job.json');
    writeFileSync(job, JSON.stringify({ batchSize: 0, peers: { min: 3, max: 2 }, checkpoint: { keep: 'all' }, mode: 'pipeline', bogus: 1 }));
    const { ManagedChild } = await import('../scripts/local-cluster/managed-child.js');
    const coordinator = new ManagedChild({ name: 'coordinator', script: path.join(import.meta.dirname, '..', 'scripts', 'coordinator.ts'), args: ['--job', job, '--no-mdns'], env: harness.env() });
    harness.children.push(coordinator);
    const exit = await within(coordinator.exited, 30_000, 'the coordinator refusing the job');
    expect(exit.code).toBe(1);
    expect(coordinator.stderr).toContain(`invalid job (file ${job} and flags)`);
    expect(coordinator.stderr).toMatch(/batchSize: must be at least 1, got 0/);
    expect(coordinator.stderr).toMatch(/checkpoint\.keep: must be a number, got "all"/);
    expect(coordinator.stderr).toMatch(/unknown field 'bogus'/);
    // Rules between fields are reported together with the rest.
    expect(coordinator.stderr).toMatch(/peers\.max: must be at least peers\.min \(3\), got 2/);
    expect(coordinator.stderr).toMatch(/mode: pipeline mode is not available/);
  });
});
