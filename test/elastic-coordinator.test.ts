import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from './deploy-support/local-http.js';
import { clusterPerTest, ClusterHarness, within } from './fixtures/cluster-harness.js';

const newCluster = clusterPerTest();

describe('losing the coordinator, losing too many peers (processes)', () => {
  it('kill -9 the coordinator mid-training: peers stop and rejoin the restarted coordinator, which resumes from the newest checkpoint (at most one interval redone)', async () => {
    const harness = newCluster();
    const job = path.join(harness.dir, 'job.json');
    const every = 20;
    writeFileSync(job, JSON.stringify({ batchSize: 64, seed: 3, maxSteps: 100, peers: { min: 2, max: 2, graceSeconds: 0 }, checkpoint: { everySteps: every, everySeconds: 0 } }));
    // Fixed for the run: the restarted coordinator must come back on the same port.
    const port = await freePort();
    const args = ['--port', String(port), '--job', job];
    const first = await harness.coordinator(args);
    const peers = [harness.peer(port, { args: ['--reconnect-timeout', '60'] }), harness.peer(port, { args: ['--reconnect-timeout', '60'] })];
    const lastStep = (): number => harness.metrics().at(-1)?.step ?? 0;

    // Kill it in the middle of a checkpoint interval.
    await ClusterHarness.until(() => lastStep() >= 50, 90_000, 'step 50');
    first.child.signal('SIGKILL');
    await first.child.exited;
    const stepAtKill = lastStep();
    const killedAt = Date.now();
    for (const peer of peers) {
      await ClusterHarness.until(() => harness.logs(peer, /^lost the coordinator; training stopped, reconnecting$/).length > 0, 15_000, `${peer.name} noticing the coordinator is gone`);
      expect(peer.running, `${peer.name} keeps running, waiting to rejoin`).toBe(true);
    }
    expect(Date.now() - killedAt).toBeLessThan(15_000);

    const second = await harness.coordinator(args, { name: 'coordinator-2' });
    const exit = await within(second.child.exited, 90_000, 'the resumed job finishing');
    expect(exit.code, second.child.stderr).toBe(0);
    for (const peer of peers) expect((await within(peer.exited, 20_000, `${peer.name} exiting`)).code, peer.name).toBe(0);

    const resumed = harness.logs(second.child, /^resuming from the checkpoint of step \d+$/)[0];
    const resumedFrom = resumed?.step as number;
    expect(resumedFrom % every).toBe(0);
    expect(stepAtKill - resumedFrom, `killed at step ${stepAtKill}, resumed from ${resumedFrom}`).toBeLessThanOrEqual(every);
    expect(resumedFrom).toBeLessThanOrEqual(stepAtKill);
    // Both peers rejoined (no new processes): one epoch of two, from the checkpoint.
    expect(harness.logs(second.child, /^forming epoch 1 with 2 peers$/)).toHaveLength(1);
    // The loss curve continues at the checkpoint's next step.
    const curve = harness.metrics();
    const restart = curve.findIndex((point, i) => i > 0 && point.step <= curve[i - 1]!.step);
    expect(curve[restart]?.step).toBe(resumedFrom + 1);
    expect(curve.at(-1)?.step).toBe(100);
    expect(harness.result()).toMatchObject({ outcome: 'finished', steps: 100, resumedFrom });
  });

  it('below peers.min the job waits, then gives up in time with a clear message — it never hangs', async () => {
    const harness = newCluster();
    const job = path.join(harness.dir, 'job.json');
    writeFileSync(job, JSON.stringify({ batchSize: 64, maxSteps: 5000, peers: { min: 2, max: 2, graceSeconds: 0, waitSeconds: 4 }, checkpoint: { everySteps: 10, everySeconds: 0 } }));
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', job]);
    const [survivor, victim] = [harness.peer(port), harness.peer(port)];
    await ClusterHarness.until(() => (harness.metrics().at(-1)?.step ?? 0) >= 15, 90_000, 'step 15');
    victim!.signal('SIGKILL');
    const killedAt = Date.now();
    const exit = await within(coordinator.exited, 30_000, 'the coordinator giving up');
    expect(exit.code).toBe(1);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(4_000);
    expect(coordinator.stderr).toMatch(/gave up after 4 s waiting for peers to continue training: 1 of the 2 needed \(peers\.min\) are ready — ready: peer-1 at 127\.0\.0\.1/);
    expect(coordinator.lines.join('\n')).toMatch(/newest checkpoint .*step-000000[1-9]0 — run the same command again to resume from it/);
    const survivorExit = await within(survivor!.exited, 15_000, 'the surviving peer leaving');
    expect(survivorExit.code).toBe(1);
  });
});
