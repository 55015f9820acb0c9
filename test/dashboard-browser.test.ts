/**
 * The dashboard end to end: a real coordinator and two real peer processes train on loopback; Debian's
 * Chromium (playwright-core) opens the address the coordinator printed and must show what happens —
 * both peers, the ring, a loss curve that grows, a killed peer marked dead, and the controls working.
 * A screenshot goes to test-artifacts/ (git-ignored).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { list } from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import type { DashboardView, StepPoint } from '../coordinator/dashboard/model/view-types.js';
import { ClusterHarness } from './fixtures/cluster-harness.js';
import { chromiumAvailable, openBrowser, type Browser } from './fixtures/dashboard-chromium.js';

const ARTIFACTS = path.join(import.meta.dirname, '..', 'test-artifacts');
const ready = chromiumAvailable('dashboard browser test');

let harness: ClusterHarness | undefined;
let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  await harness?.cleanup();
});

describe.skipIf(!ready)('dashboard in a browser (coordinator + 2 peer processes)', () => {
  it('shows both peers, the ring and a growing loss curve; marks a killed peer dead; checkpoint, pause and resume work', async () => {
    harness = new ClusterHarness();
    const job = path.join(harness.dir, 'job.json');
    // Checkpoints only on demand, so the one asked for from the page is the first in the table.
    writeFileSync(job, JSON.stringify({ batchSize: 128, epochs: 2, peers: { min: 1, max: 2, graceSeconds: 1 }, checkpoint: { everySteps: 0, everySeconds: 0 }, stepTimeoutSeconds: 30 }));
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', job, '--dashboard-port', '0']);
    const printed = coordinator.lines.map((line) => /^dashboard (http:\/\/127\.0\.0\.1:\d+\/#token=\S+)$/.exec(line)?.[1]).find(Boolean);
    expect(printed, `the coordinator prints the dashboard address:\n${coordinator.lines.join('\n')}`).toBeDefined();
    const url = printed!;
    const base = url.slice(0, url.indexOf('/#'));
    harness.peer(port, { name: 'peer-1' });
    const victim = harness.peer(port, { name: 'peer-2' });

    browser = await openBrowser();
    const { page, problems } = browser;
    const why = (): string => `${problems.join('\n')}\ncoordinator:\n${harness!.logs(coordinator).slice(-15).map((l) => JSON.stringify(l)).join('\n')}`;
    await page.goto(url);
    // The token leaves the address bar once the page has it.
    await expect.poll(() => page.url(), { timeout: 15_000 }).not.toContain('token=');

    // Both peers, training, in the table and in the ring.
    for (const id of ['peer-1', 'peer-2']) {
      await page.locator(`#peers tr[data-node-id="${id}"][data-status="training"]`).waitFor({ timeout: 120_000 }).catch((error: Error) => {
        throw new Error(`${id} never showed as training: ${error.message}\n${why()}`);
      });
    }
    const ring = page.locator('#topology svg.topology[data-kind="ring"][data-members="2"]');
    await ring.waitFor({ timeout: 10_000 });
    await expect(ring.locator('g.node[data-status="alive"]').count()).resolves.toBe(2);
    expect(await page.locator('#peers tr[data-node-id="peer-1"] td').nth(2).textContent()).toMatch(/wasm|cpu|node/);

    // The loss curve is drawn by uPlot and gains points while we watch.
    const plotted = async (): Promise<number> => Number(await page.locator('#chart-loss').getAttribute('data-points'));
    await expect.poll(plotted, { timeout: 60_000, interval: 250 }).toBeGreaterThanOrEqual(3);
    const first = await plotted();
    await expect.poll(plotted, { timeout: 60_000, interval: 250 }).toBeGreaterThan(first + 2);
    await expect(page.locator('#chart-loss canvas').count()).resolves.toBeGreaterThan(0);
    // The page's data: every figure the charts plot is measured (not left empty) on two peers.
    const { points } = (await page.evaluate(async () => (await fetch('/api/view')).json())) as { view: DashboardView; points: StepPoint[] };
    const recent = points.filter((p) => p.worldSize === 2).slice(-3);
    expect(recent.length).toBeGreaterThan(0);
    for (const point of recent) {
      expect(point.accuracy).toBeGreaterThanOrEqual(0);
      expect(point.accuracy).toBeLessThanOrEqual(1);
      for (const figure of [point.computeMs, point.communicationMs, point.dataWaitMs, point.samplesPerSecond, point.busbwBytesPerSecond]) expect(figure).toBeGreaterThan(0);
    }

    // "Checkpoint now": a row appears, and its download is the checkpoint folder as a .tar.gz.
    await page.locator('button[data-action="checkpoint"]:not([disabled])').click();
    const row = page.locator('#checkpoints tr[data-step]').first();
    await row.waitFor({ timeout: 60_000 });
    const step = Number(await row.getAttribute('data-step'));
    expect(step).toBeGreaterThan(0);
    const download = await fetch(`${base}/api/checkpoints/${step}/download`);
    expect(download.status).toBe(200);
    const archive = path.join(harness.dir, 'checkpoint.tar.gz');
    writeFileSync(archive, Buffer.from(await download.arrayBuffer()));
    const entries: string[] = [];
    await list({ file: archive, onReadEntry: (entry) => entries.push(entry.path) });
    expect(entries).toEqual(expect.arrayContaining([`step-${String(step).padStart(8, '0')}/manifest.json`, `step-${String(step).padStart(8, '0')}/model/weights.bin`]));

    // kill -9 one peer: the table marks it dead, and the ring is re-formed without it.
    const epochBefore = Number(await page.locator('#topology svg.topology').getAttribute('data-epoch'));
    victim.signal('SIGKILL');
    await page.locator('#peers tr[data-node-id="peer-2"][data-status="dead"]').waitFor({ timeout: 30_000 }).catch((error: Error) => {
      throw new Error(`the killed peer was not marked dead: ${error.message}\n${why()}`);
    });
    const topology = page.locator('#topology svg.topology');
    await expect
      .poll(async () => ({ members: await topology.getAttribute('data-members'), epoch: Number(await topology.getAttribute('data-epoch')) }), { timeout: 60_000, interval: 250 })
      .toEqual({ members: '1', epoch: expect.any(Number) as number });
    expect(Number(await topology.getAttribute('data-epoch'))).toBeGreaterThan(epochBefore);
    await page.locator('#peers tr[data-node-id="peer-1"][data-status="training"]').waitFor({ timeout: 30_000 });

    // Pause, then resume, from the page.
    await page.locator('button[data-action="pause"]:not([disabled])').click();
    await page.locator('#phase', { hasText: /^paused$/ }).waitFor({ timeout: 60_000 });
    const shownStep = async (): Promise<number> => Number((await page.locator('#step-figure').textContent())?.match(/step ([\d,]+)/)?.[1]?.replace(/,/g, ''));
    const pausedAt = await shownStep();
    await page.waitForTimeout(1_500);
    expect(await shownStep()).toBe(pausedAt);
    await page.locator('button[data-action="resume"]:not([disabled])').click();
    await page.locator('#phase', { hasText: /^training$/ }).waitFor({ timeout: 60_000 });
    await expect.poll(shownStep, { timeout: 60_000, interval: 250 }).toBeGreaterThan(pausedAt);
    await expect(page.locator('button[data-action="distill"]').isDisabled()).resolves.toBe(true);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(problems.filter((p) => !/status of 40[19]/.test(p)), why()).toEqual([]);
  }, 240_000);
});
