import { afterEach, describe, expect, it } from 'vitest';
import { coordinatorReadiness, eventLoopLiveness, PeerReadiness, serveHealthFromFlags, startHealthServer, type HealthChecks, type HealthServer } from '../shared/health/index.js';
import { httpGet } from './deploy-support/local-http.js';

let server: HealthServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('health endpoints (in process)', () => {
  it('answers /healthz and /readyz with 200 or 503 and the reason, as JSON', async () => {
    let ready = false;
    const checks: HealthChecks = { live: () => ({ ok: true, reason: 'alive' }), ready: () => ({ ok: ready, reason: ready ? 'training' : 'waiting for an epoch' }) };
    server = await startHealthServer({ host: '127.0.0.1', port: 0, checks });
    const live = await httpGet(server.port, '/healthz');
    expect(live.status).toBe(200);
    expect(live.headers['content-type']).toMatch(/^application\/json/);
    expect(live.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(live.body)).toEqual({ status: 'ok', check: 'live', reason: 'alive' });
    expect(JSON.parse((await httpGet(server.port, '/readyz')).body)).toEqual({ status: 'unavailable', check: 'ready', reason: 'waiting for an epoch' });
    expect((await httpGet(server.port, '/readyz')).status).toBe(503);
    ready = true;
    expect(await httpGet(server.port, '/readyz?verbose')).toMatchObject({ status: 200 });
  });

  it('HEAD answers without a body; other methods and paths are refused', async () => {
    server = await startHealthServer({ host: '127.0.0.1', port: 0, checks: { live: () => ({ ok: true, reason: 'x' }), ready: () => ({ ok: true, reason: 'y' }) } });
    const head = await httpGet(server.port, '/healthz', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    const post = await httpGet(server.port, '/readyz', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const other = await httpGet(server.port, '/metrics');
    expect(other.status).toBe(404);
    expect(JSON.parse(other.body).reason).toMatch(/no such endpoint: \/metrics \(try \/healthz or \/readyz\)/);
  });

  it('a check that throws is reported as failing, not as healthy', async () => {
    server = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      checks: {
        live: () => ({ ok: true, reason: 'x' }),
        ready: () => {
          throw new Error('state unreadable');
        },
      },
    });
    const answer = await httpGet(server.port, '/readyz');
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body).reason).toBe('the ready check failed: state unreadable');
  });

  it('the flags: off without --health-port, errors name the flag', async () => {
    const checks: HealthChecks = { live: () => ({ ok: true, reason: '' }), ready: () => ({ ok: true, reason: '' }) };
    expect(await serveHealthFromFlags({}, checks)).toBeUndefined();
    await expect(serveHealthFromFlags({ 'health-port': 'x' }, checks)).rejects.toThrow('--health-port x: expected a port number 0–65535');
    server = await serveHealthFromFlags({ 'health-port': '0', 'health-host': '127.0.0.1' }, checks);
    await expect(serveHealthFromFlags({ 'health-port': String(server!.port), 'health-host': '127.0.0.1' }, checks)).rejects.toThrow(`--health-port ${server!.port} on 127.0.0.1 is taken`);
  });

  it('liveness reports the longest event-loop stall since the previous probe', async () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const live = eventLoopLiveness();
    // Let the monitor's timer tick first: it measures the delay between its own ticks.
    await sleep(100);
    live();
    const until = Date.now() + 500;
    while (Date.now() < until) {
      // Block the loop on purpose.
    }
    await sleep(100);
    const status = live();
    expect(status.ok).toBe(true);
    const stalled = Number(/longest stall since the last probe: (\d+) ms/.exec(status.reason)?.[1]);
    expect(stalled).toBeGreaterThanOrEqual(350);
    // The next probe starts a new window.
    await sleep(100);
    expect(Number(/: (\d+) ms/.exec(live().reason)?.[1])).toBeLessThan(350);
  });
});

describe('readiness rules', () => {
  const state = (phase: string, address: string | undefined, detail = '') => ({ snapshot: () => ({ phase, detail, address }) });

  it('coordinator: ready while it accepts peers, not before it listens nor after the job', () => {
    expect(coordinatorReadiness(state('starting', undefined))).toEqual({ ok: false, reason: 'not listening yet (starting)' });
    for (const phase of ['waiting-for-peers', 'forming-epoch', 'training', 'recovering', 'paused', 'finishing']) {
      expect(coordinatorReadiness(state(phase, '0.0.0.0:7070', 'epoch 2')), phase).toEqual({ ok: true, reason: `accepting peers on 0.0.0.0:7070 (${phase}: epoch 2)` });
    }
    for (const phase of ['finished', 'failed', 'stopped']) expect(coordinatorReadiness(state(phase, '0.0.0.0:7070')).ok, phase).toBe(false);
  });

  it('peer: ready only while training in its current epoch', () => {
    const readiness = new PeerReadiness();
    expect(readiness.status()).toEqual({ ok: false, reason: 'starting' });
    readiness.searching('connect ECONNREFUSED 10.0.0.5:7070');
    expect(readiness.status().reason).toBe('looking for the coordinator (last problem: connect ECONNREFUSED 10.0.0.5:7070)');
    readiness.connected('coordinator-a at 10.0.0.5:7070');
    expect(readiness.status().ok).toBe(false);
    readiness.assigned(1, 0, 2);
    expect(readiness.status()).toEqual({ ok: false, reason: 'assigned to epoch 1 as rank 0 of 2; waiting for it to start' });
    readiness.training(1);
    expect(readiness.status()).toEqual({ ok: true, reason: 'training in epoch 1 as rank 0 of 2' });
    readiness.epochEnded(1, 'aborted');
    expect(readiness.status()).toEqual({ ok: false, reason: 'epoch 1 ended (aborted); waiting for the next' });
    readiness.assigned(2, 1, 3);
    readiness.training(2);
    // A late report about an older epoch changes nothing.
    readiness.epochEnded(1, 'aborted');
    readiness.training(1);
    expect(readiness.status()).toEqual({ ok: true, reason: 'training in epoch 2 as rank 1 of 3' });
    readiness.left('the job finished');
    expect(readiness.status()).toEqual({ ok: false, reason: 'left the cluster: the job finished' });
  });
});
