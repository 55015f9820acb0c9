/**
 * One coordinator per run folder: a second one on the same folder refuses with a message naming the
 * holder; a lock left by a dead coordinator (kill -9) or unrefreshed on another host is taken over.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireRunFolderLock, LOCK_FILE, lockRunFolder, RunFolderBusyError } from '../coordinator/state/run-folder-lock.js';
import { createLogger } from '../shared/log/logger.js';
import { ClusterHarness, within } from './fixtures/cluster-harness.js';

const dirs: string[] = [];
const harnesses: ClusterHarness[] = [];
afterAll(async () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await Promise.all(harnesses.map((h) => h.cleanup()));
});

function folder(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-lock-'));
  dirs.push(dir);
  return path.join(dir, 'run');
}

function writeLock(dir: string, fields: Record<string, unknown>, ageSeconds = 0): void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  writeFileSync(file, JSON.stringify({ startedAt: new Date().toISOString(), token: 'theirs', ...fields }));
  const when = new Date(Date.now() - ageSeconds * 1000);
  utimesSync(file, when, when);
}

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('run folder lock', () => {
  it('refuses a second holder while the first lives, naming it, and is free again once released', () => {
    const dir = folder();
    const first = lockRunFolder(dir);
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(true);
    expect(() => lockRunFolder(dir)).toThrowError(RunFolderBusyError);
    expect(() => lockRunFolder(dir)).toThrowError(new RegExp(`in use by the coordinator with pid ${process.pid} on ${os.hostname()}.*another --run-dir`));
    first.release();
    first.release();
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    lockRunFolder(dir).release();
  });

  it('takes over a lock whose process is gone, or that another host stopped refreshing, and says so', () => {
    const warnings: string[] = [];
    const log = createLogger('lock-test');
    log.warn = ((_fields: unknown, message: string) => void warnings.push(message)) as typeof log.warn;

    const dir = folder();
    lockRunFolder(dir).release();
    const pid = deadPid();
    writeLock(dir, { hostname: os.hostname(), pid });
    const lock = lockRunFolder(dir, { log });
    expect(warnings.at(-1)).toContain(`its coordinator (pid ${pid}) is no longer running`);
    expect(JSON.parse(readFileSync(lock.file, 'utf8'))).toMatchObject({ pid: process.pid, hostname: os.hostname() });
    lock.release();

    // Another host: its pid means nothing here, only the refreshes count.
    writeLock(dir, { hostname: 'elsewhere', pid: process.pid + 1 });
    expect(() => lockRunFolder(dir, { log })).toThrowError(/pid \d+ on elsewhere/);
    writeLock(dir, { hostname: 'elsewhere', pid: process.pid + 1 }, 60);
    lockRunFolder(dir, { log }).release();
    expect(warnings.at(-1)).toMatch(/not refreshed for 6\d s/);

    // A damaged lock file: being written if new, taken over once it has stayed damaged a while.
    writeFileSync(path.join(dir, LOCK_FILE), '{"hostna');
    expect(() => lockRunFolder(dir, { log })).toThrowError(/its lock file is being written/);
    const old = new Date(Date.now() - 5_000);
    utimesSync(path.join(dir, LOCK_FILE), old, old);
    lockRunFolder(dir, { log }).release();
    expect(warnings.at(-1)).toContain('damaged');
  });

  it("waits for another host's lock to go stale (a rescheduled pod), but not for one that keeps being refreshed", async () => {
    const dir = folder();
    writeLock(dir, { hostname: 'old-pod', pid: 1 }, 0.6);
    const started = Date.now();
    const lock = await acquireRunFolderLock(dir, { staleAfterMs: 1_000, refreshMs: 200 });
    expect(Date.now() - started).toBeGreaterThan(200);
    lock.release();

    writeLock(dir, { hostname: 'live-pod', pid: 1 });
    const refresher = setInterval(() => {
      const now = new Date();
      utimesSync(path.join(dir, LOCK_FILE), now, now);
    }, 100);
    try {
      await expect(acquireRunFolderLock(dir, { staleAfterMs: 1_000, refreshMs: 200 })).rejects.toThrowError(/in use by the coordinator with pid 1 on live-pod/);
    } finally {
      clearInterval(refresher);
    }
    // Same host, live process: no waiting at all.
    const held = lockRunFolder(dir + '-2');
    const asked = Date.now();
    await expect(acquireRunFolderLock(dir + '-2')).rejects.toThrowError(RunFolderBusyError);
    expect(Date.now() - asked).toBeLessThan(1_000);
    held.release();
  });

  it('keeps the lock fresh while held, so another host does not take it over', async () => {
    const dir = folder();
    const lock = lockRunFolder(dir, { refreshMs: 50 });
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock.file, old, old);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(Date.now() - (await import('node:fs')).statSync(lock.file).mtimeMs).toBeLessThan(5_000);
    lock.release();
  });

  it('a second coordinator process on the same run folder refuses; after kill -9 of the first, a new one takes over', async () => {
    const harness = new ClusterHarness();
    harnesses.push(harness);
    const job = path.join(harness.dir, 'job.json');
    writeFileSync(job, JSON.stringify({ batchSize: 64, maxSteps: 50, peers: { min: 1, max: 1, graceSeconds: 1 } }));
    const { child: first } = await harness.coordinator(['--port', '0', '--job', job]);

    const second = await harness.coordinator(['--port', '0', '--job', job], { name: 'second' }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(second, 'the second coordinator should not have started').toBeInstanceOf(Error);
    const refused = harness.children.find((child) => child.name === 'second')!;
    const exit = await within(refused.exited, 20_000, 'the second coordinator exiting');
    expect(exit.code).toBe(1);
    expect(refused.stderr).toContain(`in use by the coordinator with pid ${first.pid}`);

    first.signal('SIGKILL');
    await within(first.exited, 10_000, 'the first coordinator dying');
    const { child: third } = await harness.coordinator(['--port', '0', '--job', job], { name: 'third' });
    // Its log reaches the file through a pipe, possibly after the stdout line we waited for.
    await ClusterHarness.until(() => harness.logs(third, /^taking over the run folder's lock/).length > 0, 10_000, "the third coordinator's take-over warning");
    expect(harness.logs(third, /^taking over the run folder's lock/).length).toBe(1);
    const stopped = await third.stop('SIGTERM', 15_000);
    const lockFile = path.join(harness.runDir, LOCK_FILE);
    const released = await within(
      (async () => {
        for (let i = 0; i < 30 && existsSync(lockFile); i++) await new Promise((resolve) => setTimeout(resolve, 100));
        return !existsSync(lockFile);
      })(),
      10_000,
      'the lock file to go',
    );
    const left = released ? '' : readFileSync(lockFile, 'utf8');
    expect(released, `the lock is released on a clean stop (exit ${JSON.stringify(stopped)}, third pid ${third.pid}, lock left: ${left})\n${third.stderr.slice(-2_000)}`).toBe(true);
  }, 90_000);
});
