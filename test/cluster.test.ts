import { createReadStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { loadMnist } from '../shared/data/mnist.js';
import { evaluate } from '../peer/trainer/evaluate.js';
import { ManagedChild } from '../scripts/local-cluster/managed-child.js';
import { clusterPerTest, isRunning, within } from './fixtures/cluster-harness.js';

const newCluster = clusterPerTest();

describe('local cluster: coordinator and peer processes', () => {
  it('npm start: a coordinator and two peer processes train end to end, print accuracy and checkpoint, leave no process behind; the checkpoint loads with stock tf.loadLayersModel and scores the reported accuracy', async () => {
    const harness = newCluster();
    const runDir = harness.runDir;
    const launcher = new ManagedChild({ name: 'npm start', script: path.join(import.meta.dirname, '..', 'scripts', 'start.ts'), args: ['--peers', '2', '--max-steps', '40', '--run-dir', runDir], env: harness.env() });
    harness.children.push(launcher);
    const exit = await within(launcher.exited, 120_000, 'npm start finishing');
    expect(exit.code, launcher.stderr).toBe(0);
    const output = launcher.lines.join('\n');
    expect(output).toMatch(/^local cluster: coordinator on 127\.0\.0\.1:\d+ \+ 2 peers \(logs in .*logs\)$/m);
    expect(output).toMatch(/^model .*step-00000040\/model\/model\.json/m);
    expect(output).toMatch(/^finished in [\d.]+ s/m);

    // Every process has exited; ranks 0 and 1 of one epoch, each told the whole topology.
    const logs = readdirSync(path.join(runDir, 'logs')).map((file) => readFileSync(path.join(runDir, 'logs', file), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>));
    expect(logs).toHaveLength(3);
    for (const lines of logs) expect(isRunning(lines[0]!.pid as number)).toBe(false);
    const assigned = logs.flatMap((lines) => lines.filter((l) => l.msg === 'assigned'));
    expect(assigned.map((a) => a.rank).sort()).toEqual([0, 1]);
    expect(assigned.every((a) => a.epoch === 1 && a.worldSize === 2)).toBe(true);

    // Every step's loss is in the curve, averaged over both slices of the global batch.
    const curve = harness.metrics();
    expect(curve.map((p) => p.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(curve.every((p) => p.worldSize === 2 && Number.isFinite(p.loss))).toBe(true);
    expect(curve.at(-1)!.loss).toBeLessThan(curve[0]!.loss);

    const result = harness.result();
    expect(result.outcome).toBe('finished');
    expect(result.steps).toBe(40);
    expect(result.accuracy as number).toBeGreaterThan(0.8);
    expect(output).toContain(`test accuracy ${((result.accuracy as number) * 100).toFixed(2)}% (loss ${(result.testLoss as number).toFixed(4)}, 10000 samples) after 40 steps`);

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
    const harness = newCluster();
    const job = path.join(harness.dir, 'job.json');
    // 15 s: the good peer (tsx + tfjs start-up) must join inside the window even on a loaded CI machine.
    writeFileSync(job, JSON.stringify({ peers: { min: 2, max: 3, graceSeconds: 1, joinTimeoutSeconds: 15 }, maxSteps: 5 }));
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', job]);
    const good = harness.peer(port, { name: 'good-peer' });
    const impostor = harness.peer(port, { name: 'impostor', env: { RINGPIPE_SECRET: 'not-the-cluster-secret-at-all-0000' } });

    const impostorExit = await within(impostor.exited, 30_000, 'the peer with the wrong secret giving up');
    expect(impostorExit.code).toBe(1);
    expect(impostor.stderr).toMatch(/secret/i);

    const exit = await within(coordinator.exited, 40_000, 'the rendezvous timing out');
    expect(exit.code).toBe(1);
    const message = coordinator.stderr;
    expect(message).toMatch(/gave up after 15 s waiting for peers to start the job: 1 of the 2 needed \(peers\.min\) are ready/);
    expect(message).toMatch(/ready: good-peer at 127\.0\.0\.1/);
    expect(message).toMatch(/refused at the handshake: refused impostor \(peer\) at 127\.0\.0\.1:\d+: wrong cluster secret/);
    expect(message).toMatch(/npm run peer -- --coordinator 127\.0\.0\.1:\d+/);
    // The peer that did join is told the job is over and leaves.
    const goodExit = await within(good.exited, 15_000, 'the joined peer leaving');
    expect(goodExit.code).toBe(1);
    expect(good.lines.join('\n')).toMatch(/peer stopped: the job ended: gave up/);
  });

  it('a peer with no address finds the coordinator with mDNS (confined to loopback) and trains', async () => {
    const harness = newCluster();
    const cluster = `mdns-${process.pid}-${Date.now() % 100_000}`;
    const { child: coordinator } = await harness.coordinator(['--port', '0', '--cluster', cluster, '--min-peers', '1', '--max-peers', '1', '--max-steps', '5'], { mdns: true });
    const peer = harness.discoveringPeer(cluster);
    expect((await within(coordinator.exited, 60_000, 'the job finishing')).code, coordinator.stderr).toBe(0);
    expect((await within(peer.exited, 15_000, 'the peer exiting')).code).toBe(0);
    expect(harness.logs(coordinator, /^advertising on mDNS$/)[0]).toMatchObject({ cluster, role: 'coordinator', interface: 'lo' });
    expect(harness.logs(peer, /^connected to the coordinator$/)[0]).toMatchObject({ via: 'mdns' });
  });

  it('refuses a bad job file, naming every bad field', async () => {
    const harness = newCluster();
    const job = path.join(harness.dir, 'bad-job.json');
    writeFileSync(job, JSON.stringify({ batchSize: 0, peers: { min: 3, max: 2 }, checkpoint: { keep: 'all' }, mode: 'pipeline', pipeline: { schedule: 'zigzag' }, bogus: 1 }));
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
    expect(coordinator.stderr).toMatch(/pipeline\.schedule: must be one of "gpipe", "1f1b", got "zigzag"/);
  });
});
