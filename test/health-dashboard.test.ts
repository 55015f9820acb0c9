/**
 * The coordinator serves its probes on the dashboard's port (one HTTP server). Exposed beyond
 * loopback — as in a pod, where the kubelet probes the pod's address — every dashboard request
 * needs the token, except the probes: the kubelet has none, and they carry no secret.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../coordinator/coordinator.js';
import { startDashboard, type Dashboard } from '../coordinator/dashboard/index.js';
import { parseClusterJob } from '../coordinator/job/cluster-job.js';
import { coordinatorReadiness, eventLoopLiveness } from '../shared/health/index.js';
import { createLogger } from '../shared/log/logger.js';
import { httpGet } from './deploy-support/local-http.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-health-dashboard-'));
let dashboard: Dashboard | undefined;
let coordinator: Coordinator | undefined;

afterAll(async () => {
  await dashboard?.close();
  if (coordinator) {
    await coordinator.stop('test over');
    await coordinator.run();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('probes on the dashboard port', () => {
  it('answer without the token while everything else on an exposed dashboard needs it', async () => {
    const log = createLogger('coordinator', { level: 'warn' });
    coordinator = new Coordinator({ job: parseClusterJob({}, 'test job'), jobName: 'probes', cluster: 'probes', runDir: dir, host: '127.0.0.1', port: 0, mdns: false, logger: log });
    const checks = { live: eventLoopLiveness(), ready: () => coordinatorReadiness(coordinator!.state) };
    // Exposed as on 0.0.0.0, bound to loopback so the test opens nothing beyond this machine.
    dashboard = await startDashboard(coordinator, { host: '127.0.0.1', port: 0, portChosen: true, exposed: true, token: { value: 'a-test-token-0123456789', origin: 'flag' } }, log, checks);

    expect((await httpGet(dashboard.port, '/api/view')).status).toBe(401);
    expect((await httpGet(dashboard.port, '/healthz')).status).toBe(200);
    const before = await httpGet(dashboard.port, '/readyz');
    expect(before.status).toBe(503);
    expect(JSON.parse(before.body).reason).toBe('not listening yet (starting)');

    await coordinator.start();
    const after = await httpGet(dashboard.port, '/readyz');
    expect(after.status, after.body).toBe(200);
    expect(JSON.parse(after.body).reason).toMatch(/^accepting peers on 127\.0\.0\.1:\d+ \(waiting-for-peers/);
  });
});
