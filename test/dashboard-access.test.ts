/**
 * Who may look at and act on the dashboard, against a real dashboard server (loopback, in this
 * process) for a real, not yet started coordinator: the token for controls, the token for
 * everything once exposed, Host and Origin checks, clear refusals; flags and the token's origin;
 * and a page that loads nothing from anywhere else.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { Coordinator } from '../coordinator/coordinator.js';
import { dashboardSettingsFromFlags, startDashboard, type Dashboard, type DashboardSettings } from '../coordinator/dashboard/index.js';
import type { DashboardView, FeedMessage } from '../coordinator/dashboard/model/view-types.js';
import { parseClusterJob } from '../coordinator/job/cluster-job.js';
import { createLogger } from '../shared/log/logger.js';

const TOKEN = 'test-token-0123456789abcdef';
/** A small trained model of the distillation tests (the teacher a round loads first). */
const TEACHER = path.join(import.meta.dirname, 'fixtures', 'distill-teacher', 'model.json');
const log = createLogger('dashboard-test', { level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(exposed: boolean): Promise<{ dashboard: Dashboard; base: string; coordinator: Coordinator }> {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'rp-dash-'));
  cleanups.push(() => rmSync(runDir, { recursive: true, force: true }));
  const coordinator = new Coordinator({ job: parseClusterJob({}), jobName: 'access', cluster: 'test', runDir, mdns: false, logger: log });
  // `exposed` is what a non-loopback --dashboard-host sets; the server itself stays on loopback here.
  const settings: DashboardSettings = { host: '127.0.0.1', port: 0, portChosen: true, token: { value: TOKEN, origin: 'flag' }, exposed };
  const dashboard = await startDashboard(coordinator, settings, log);
  cleanups.push(() => dashboard.close());
  return { dashboard, base: `http://127.0.0.1:${dashboard.port}`, coordinator };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A GET with any Host header (fetch does not let a caller set Host). */
function getWithHost(port: number, urlPath: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
  });
}

/** Opens /live; resolves with the first message, or with the HTTP status of a refusal. */
function openFeed(url: string, headers: Record<string, string> = {}): Promise<FeedMessage | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const timer = setTimeout(() => reject(new Error('the feed neither answered nor refused')), 10_000);
    ws.on('message', (data) => {
      clearTimeout(timer);
      ws.close();
      resolve(JSON.parse(String(data)) as FeedMessage);
    });
    ws.on('unexpected-response', (_request, response) => {
      clearTimeout(timer);
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', () => {});
  });
}

describe('dashboard access on loopback', () => {
  it('lets anyone on this machine look, but only the token holder act', async () => {
    const { base } = await serve(false);
    expect((await fetch(`${base}/api/view`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    const noToken = await fetch(`${base}/api/control/pause`, { method: 'POST' });
    expect(noToken.status).toBe(401);
    expect(((await noToken.json()) as { error: string }).error).toMatch(/dashboard token/);
    expect((await fetch(`${base}/api/control/pause`, { method: 'POST', headers: bearer('wrong-token-0123456789') })).status).toBe(403);
    // A token in the query string is not enough to act (a cross-site form could carry one).
    expect((await fetch(`${base}/api/control/pause?token=${TOKEN}`, { method: 'POST' })).status).toBe(401);
    // With the token: the control runs, and says why it cannot act before training.
    const early = await fetch(`${base}/api/control/pause`, { method: 'POST', headers: bearer(TOKEN) });
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: string }).error).toMatch(/nothing to pause while waiting-for-peers|starting/);
    expect((await fetch(`${base}/api/control/checkpoint`, { method: 'POST', headers: bearer(TOKEN) })).status).toBe(409);
    expect((await fetch(`${base}/api/control/launch-missiles`, { method: 'POST', headers: bearer(TOKEN) })).status).toBe(404);
    expect((await fetch(`${base}/api/checkpoints/5/download`)).status).toBe(404);
  });

  it('turns away requests for another host name (DNS rebinding) and feeds opened by other sites', async () => {
    const { dashboard } = await serve(false);
    const rebound = await getWithHost(dashboard.port, '/api/view', 'attacker.example');
    expect(rebound.status).toBe(403);
    expect(rebound.body).toMatch(/loopback host/);
    expect((await getWithHost(dashboard.port, '/api/view', `localhost:${dashboard.port}`)).status).toBe(200);
    expect((await getWithHost(dashboard.port, '/', 'attacker.example')).status).toBe(403);
    const live = `ws://127.0.0.1:${dashboard.port}/live`;
    expect(await openFeed(live, { origin: 'http://attacker.example' })).toBe(403);
    const snapshot = await openFeed(live, { origin: `http://127.0.0.1:${dashboard.port}` });
    expect(typeof snapshot).toBe('object');
    expect((snapshot as FeedMessage).type).toBe('snapshot');
    expect((snapshot as FeedMessage).view.job.jobName).toBe('access');
  });

  it('serves a page that loads nothing from other servers', async () => {
    const { base } = await serve(false);
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    const html = await page.text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    const script = await fetch(`${base}/assets/dashboard.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    const code = await script.text();
    // uPlot is bundled in (its class names), not fetched.
    expect(code).toContain('u-legend');
    expect(code).not.toMatch(/import\s*\(?\s*["']https?:/);
    expect((await fetch(`${base}/assets/uplot.css`)).status).toBe(200);
  });
});

describe('distillation from the dashboard', () => {
  const post = (base: string, body: unknown) =>
    fetch(`${base}/api/control/distill`, { method: 'POST', headers: { ...bearer(TOKEN), 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const errorOf = async (response: Response) => ((await response.json()) as { error: string }).error;

  it('validates the round with the rounds\' own schema, reports a round that fails at once, and shows a running one', async () => {
    const { base, coordinator } = await serve(false);
    const disabled = await post(base, { teacher: TEACHER, student: 'mlp-small' });
    expect(disabled.status).toBe(409);
    expect(await errorOf(disabled)).toBe('the coordinator is still starting');
    // Listening (loopback, no mDNS) and waiting for peers: a round may start now.
    await coordinator.start();
    cleanups.push(() => coordinator.shutdown('test over', true));
    const noBody = await fetch(`${base}/api/control/distill`, { method: 'POST', headers: bearer(TOKEN) });
    expect(noBody.status).toBe(400);
    expect(await errorOf(noBody)).toMatch(/JSON object/);
    expect((await post(base, '{"teacher": ')).status).toBe(400);
    const invalid = await post(base, { teacher: 'previous', topK: 0 });
    expect(invalid.status).toBe(400);
    expect(await errorOf(invalid)).toMatch(/student[\s\S]*topK|topK[\s\S]*student/);

    // A round whose teacher cannot be read starts, fails, and the panel says why.
    const view = async (): Promise<DashboardView> => ((await (await fetch(`${base}/api/view`)).json()) as { view: DashboardView }).view;
    const missingTeacher = await post(base, { teacher: path.join(os.tmpdir(), 'no-such-teacher', 'model.json'), student: 'mlp-small' });
    expect(missingTeacher.status).toBe(200);
    await expect.poll(async () => (await view()).distillation.lastFailure?.message, { timeout: 10_000 }).toMatch(/no model at .*no-such-teacher/);
    expect((await view()).distillation).toMatchObject({ available: true, running: null, lastFailure: { round: 1 } });

    const started = await post(base, { teacher: TEACHER, student: 'mlp-small', maxSteps: 5, peers: { waitSeconds: 60 } });
    expect(started.status, await started.clone().text()).toBe(200);
    const number = Number(/^distillation round (\d+) started$/.exec(((await started.json()) as { message: string }).message)?.[1]);
    await expect.poll(async () => (await view()).distillation.running?.stage, { timeout: 10_000 }).toBe('waiting-for-peers');
    const running = await view();
    expect(running.distillation.running).toMatchObject({ round: number, student: 'mlp-small', teacher: TEACHER });
    expect(running.controls.distill).toEqual({ enabled: false, reason: 'a distillation round is running' });
    expect((await post(base, { teacher: TEACHER, student: 'mlp-small' })).status).toBe(409);
    expect(coordinator.distillation.cancel('test over')).toBe(true);
  });
});

describe('dashboard access when exposed', () => {
  it('needs the token for every read, from a header or ?token=', async () => {
    const { base, dashboard } = await serve(true);
    for (const endpoint of ['/api/view', '/metrics']) {
      expect((await fetch(`${base}${endpoint}`)).status, endpoint).toBe(401);
      expect((await fetch(`${base}${endpoint}`, { headers: bearer(TOKEN) })).status, endpoint).toBe(200);
      expect((await fetch(`${base}${endpoint}?token=${TOKEN}`)).status, endpoint).toBe(200);
      expect((await fetch(`${base}${endpoint}?token=nope-nope-nope-nope`)).status, endpoint).toBe(403);
    }
    // The page itself holds no data; any Host is fine once exposed.
    expect((await getWithHost(dashboard.port, '/', 'lab-1.example:7080')).status).toBe(200);
    const live = `ws://127.0.0.1:${dashboard.port}/live`;
    expect(await openFeed(live)).toBe(401);
    expect(((await openFeed(`${live}?token=${TOKEN}`)) as FeedMessage).type).toBe('snapshot');
  });
});

describe('dashboard flags', () => {
  const secret = { env: { RINGPIPE_SECRET: 'a-cluster-secret-of-enough-length' } };

  it('binds loopback by default; any other address exposes it', () => {
    const local = dashboardSettingsFromFlags({}, secret)!;
    expect(local).toMatchObject({ host: '127.0.0.1', port: 7080, portChosen: false, exposed: false });
    expect(dashboardSettingsFromFlags({ 'dashboard-host': '0.0.0.0', 'dashboard-port': '0' }, secret)).toMatchObject({ exposed: true, port: 0, portChosen: true });
    expect(dashboardSettingsFromFlags({ 'dashboard-host': '::1' }, secret)!.exposed).toBe(false);
    expect(dashboardSettingsFromFlags({ 'no-dashboard': true }, secret)).toBeUndefined();
  });

  it('derives a stable token from the cluster secret, never the secret itself; else a random one; rejects weak ones', () => {
    const a = dashboardSettingsFromFlags({}, secret)!.token;
    expect(a.origin).toBe('cluster secret');
    expect(a.value).toBe(dashboardSettingsFromFlags({}, secret)!.token.value);
    expect(a.value).not.toContain('a-cluster-secret');
    const random = dashboardSettingsFromFlags({}, { env: {} })!.token;
    expect(random.origin).toBe('random');
    expect(random.value).not.toBe(dashboardSettingsFromFlags({}, { env: {} })!.token.value);
    expect(dashboardSettingsFromFlags({}, { env: { RINGPIPE_DASHBOARD_TOKEN: 'from-the-environment-1234' } })!.token).toEqual({ value: 'from-the-environment-1234', origin: 'env' });
    expect(() => dashboardSettingsFromFlags({ 'dashboard-token': 'short' }, secret)).toThrow(/--dashboard-token is too short \(5 characters, need at least 16\)/);
    expect(() => dashboardSettingsFromFlags({ 'dashboard-port': '70000' }, secret)).toThrow(/--dashboard-port 70000: expected a port number/);
  });

  it('says what to do when the chosen port is taken, and falls back when the default one is', async () => {
    const { dashboard } = await serve(false);
    const runDir = mkdtempSync(path.join(os.tmpdir(), 'rp-dash-'));
    cleanups.push(() => rmSync(runDir, { recursive: true, force: true }));
    const coordinator = new Coordinator({ job: parseClusterJob({}), jobName: 'taken', cluster: 'test', runDir, mdns: false, logger: log });
    const settings: DashboardSettings = { host: '127.0.0.1', port: dashboard.port, portChosen: true, token: { value: TOKEN, origin: 'flag' }, exposed: false };
    await expect(startDashboard(coordinator, settings, log)).rejects.toThrow(`dashboard port ${dashboard.port} on 127.0.0.1 is taken: choose another --dashboard-port`);
    const fallback = await startDashboard(coordinator, { ...settings, portChosen: false }, log);
    cleanups.push(() => fallback.close());
    expect(fallback.port).not.toBe(dashboard.port);
    expect(fallback.url).toBe(`http://127.0.0.1:${fallback.port}/#token=${TOKEN}`);
  });
});
