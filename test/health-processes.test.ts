/**
 * The probes of real coordinator and peer processes, configured the way the container image and
 * the Kubernetes manifests configure them: through environment variables only, no flags. Loopback
 * only, mDNS off; every wait has a deadline and every process is killed at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManagedChild } from '../scripts/local-cluster/managed-child.js';
import { envWith, httpGet } from './deploy-support/local-http.js';

const ROOT = path.join(import.meta.dirname, '..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-health-'));
const children: ManagedChild[] = [];

afterAll(async () => {
  await Promise.all(children.map((child) => child.stop('SIGKILL', 1_000)));
  rmSync(dir, { recursive: true, force: true });
});

function start(name: string, script: 'coordinator' | 'peer', settings: Record<string, string>): ManagedChild {
  const child = new ManagedChild({ name, script: path.join(ROOT, 'scripts', `${script}.ts`), args: [], env: envWith({ RINGPIPE_LOG_FORMAT: 'json', ...settings }), logFile: path.join(dir, `${name}.log`) });
  children.push(child);
  return child;
}

async function healthPort(child: ManagedChild): Promise<number> {
  const [, port] = await child.waitForLine(/^health endpoints on http:\/\/127\.0\.0\.1:(\d+)\/healthz and \/readyz$/, 60_000);
  return Number(port);
}

interface Probe {
  status: number;
  reason: string;
}

async function probe(port: number, path: '/healthz' | '/readyz', timeoutMs = 3_000): Promise<Probe> {
  const answer = await httpGet(port, path, { timeoutMs });
  return { status: answer.status, reason: (JSON.parse(answer.body) as { reason: string }).reason };
}

/** Polls a probe until its answer matches; fails after `timeoutMs` with the last answer. */
async function until(port: number, path: '/healthz' | '/readyz', status: number, reason: RegExp, timeoutMs: number): Promise<Probe> {
  const deadline = Date.now() + timeoutMs;
  let last: Probe | Error | undefined;
  for (;;) {
    last = await probe(port, path).catch((error: Error) => error);
    if (!(last instanceof Error) && last.status === status && reason.test(last.reason)) return last;
    if (Date.now() > deadline) throw new Error(`${path} on ${port} did not answer ${status} ${reason} within ${timeoutMs} ms; last: ${last instanceof Error ? last.message : `${last.status} ${last.reason}`}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function logMessages(name: string): Record<string, unknown>[] {
  return readFileSync(path.join(dir, `${name}.log`), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('health endpoints of real processes, configured by environment only', () => {
  it('liveness answers while the loop runs and not while the process is frozen; readiness follows rendezvous, epochs, a replaced peer and the end of the job', async () => {
    const secretFile = path.join(dir, 'cluster-secret');
    writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`);
    const job = path.join(dir, 'probe-job.json');
    // min 1 and 5000 steps in the file; the environment overrides both.
    writeFileSync(job, JSON.stringify({ batchSize: 64, seed: 5, maxSteps: 5000, peers: { min: 1, max: 2, graceSeconds: 0, waitSeconds: 60 }, checkpoint: { everySteps: 0, everySeconds: 0 } }));
    const runDir = path.join(dir, 'run');
    const shared = { RINGPIPE_CLUSTER: 'probe-test', RINGPIPE_MDNS: '0', RINGPIPE_SECRET_FILE: secretFile, RINGPIPE_KEEP_RUNNING: '1' };

    const coordinator = start('coordinator', 'coordinator', {
      ...shared,
      RINGPIPE_JOB: job,
      RINGPIPE_PORT: '0',
      RINGPIPE_HOST: '127.0.0.1',
      RINGPIPE_RUN_DIR: runDir,
      RINGPIPE_MIN_PEERS: '2',
      RINGPIPE_MAX_STEPS: '80',
      // The coordinator's probes are on its dashboard's port, as in the Kubernetes manifests.
      RINGPIPE_DASHBOARD_PORT: '0',
      RINGPIPE_DASHBOARD_HOST: '127.0.0.1',
    });
    const coordinatorHealth = Number((await coordinator.waitForLine(/^dashboard http:\/\/127\.0\.0\.1:(\d+)\/#token=/, 60_000))[1]);
    const [, port] = await coordinator.waitForLine(/^coordinator listening on 127\.0\.0\.1:(\d+) \(cluster probe-test, job probe-job, run folder (.+)\)$/, 60_000);
    expect(coordinator.lines.join('\n')).toContain(`run folder ${runDir})`);
    expect((await probe(coordinatorHealth, '/healthz')).status).toBe(200);
    await until(coordinatorHealth, '/readyz', 200, new RegExp(`^accepting peers on 127\\.0\\.0\\.1:${port} \\(waiting-for-peers`), 10_000);

    const peerSettings = (nodeId: string) => ({ ...shared, RINGPIPE_HEALTH_PORT: '0', RINGPIPE_HEALTH_HOST: '127.0.0.1', RINGPIPE_COORDINATOR: `127.0.0.1:${port}`, RINGPIPE_NODE_ID: nodeId, RINGPIPE_BACKEND: 'wasm', RINGPIPE_RING_HOST: '127.0.0.1', RINGPIPE_RECONNECT_TIMEOUT: '60' });
    const first = start('ringpipe-peer-0', 'peer', peerSettings('ringpipe-peer-0'));
    const firstHealth = await healthPort(first);
    // With peers.min 2 from the environment, one peer waits, connected but not ready.
    await until(firstHealth, '/readyz', 503, /^connected to the coordinator .*waiting to be given a place in an epoch$/, 60_000);

    // A frozen process cannot answer its liveness probe; thawed, it answers again.
    first.signal('SIGSTOP');
    await expect(probe(firstHealth, '/healthz', 1_500)).rejects.toThrow(/no answer on \/healthz within 1500 ms/);
    first.signal('SIGCONT');
    expect(await probe(firstHealth, '/healthz')).toMatchObject({ status: 200, reason: expect.stringMatching(/^event loop turning \(longest stall since the last probe: \d+ ms\)$/) });

    const second = start('ringpipe-peer-1', 'peer', peerSettings('ringpipe-peer-1'));
    const secondHealth = await healthPort(second);
    await until(firstHealth, '/readyz', 200, /^training in epoch 1 as rank 0 of 2$/, 60_000);
    await until(secondHealth, '/readyz', 200, /^training in epoch 1 as rank 1 of 2$/, 10_000);
    await until(coordinatorHealth, '/readyz', 200, /\(training: epoch 1: 2 peers/, 5_000);

    // A pod lost without warning: the survivor leaves the epoch (not ready) while the coordinator keeps accepting peers.
    second.signal('SIGKILL');
    await until(firstHealth, '/readyz', 503, /^epoch 1 ended \((aborted|failed)\); waiting for the next$/, 15_000);
    expect((await probe(coordinatorHealth, '/readyz')).status).toBe(200);
    // Its replacement comes back under the same name, as a StatefulSet's does, and both train in the next epoch.
    const replacement = start('ringpipe-peer-1-again', 'peer', peerSettings('ringpipe-peer-1'));
    const replacementHealth = await healthPort(replacement);
    await until(replacementHealth, '/readyz', 200, /^training in epoch \d+ as rank \d of 2$/, 60_000);
    await until(firstHealth, '/readyz', 200, /^training in epoch \d+ as rank \d of 2$/, 10_000);

    // The end of the job: with RINGPIPE_KEEP_RUNNING every process stays up, alive and not ready.
    await coordinator.waitForLine(/^keeping the process up \(--keep-running\) until SIGTERM$/, 90_000);
    await until(coordinatorHealth, '/readyz', 503, /^not accepting peers \(finished: test accuracy/, 5_000);
    expect((await probe(coordinatorHealth, '/healthz')).status).toBe(200);
    for (const [peer, health] of [[first, firstHealth], [replacement, replacementHealth]] as const) {
      await peer.waitForLine(/^keeping the process up \(--keep-running\) until SIGTERM$/, 20_000);
      await until(health, '/readyz', 503, /^left the cluster: the job finished$/, 5_000);
      expect((await probe(health, '/healthz')).status).toBe(200);
    }
    expect(coordinator.running && first.running && replacement.running).toBe(true);
    for (const child of [coordinator, first, replacement]) expect((await child.stop('SIGTERM', 10_000)).code, child.name).toBe(0);

    // The other settings were read from the environment too.
    const result = JSON.parse(readFileSync(path.join(runDir, 'result.json'), 'utf8')) as { outcome: string; steps: number };
    expect(result).toMatchObject({ outcome: 'finished', steps: 80 });
    const joined = logMessages('coordinator').filter((line) => line.msg === 'peer joined; sending the job').map((line) => String(line.peer));
    expect(joined.filter((label) => label.startsWith('ringpipe-peer-1'))).toHaveLength(2);
    expect(logMessages('ringpipe-peer-0').some((line) => line.msg === 'tensor backend: wasm')).toBe(true);
  });
});
