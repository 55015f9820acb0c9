import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagedChild } from '../scripts/local-cluster/managed-child.js';
import { ClusterHarness, isRunning, within } from './fixtures/cluster-harness.js';

const START = path.join(import.meta.dirname, '..', 'scripts', 'start.ts');
let dir: string | undefined;
let start: ManagedChild | undefined;
afterEach(async () => {
  await start?.stop('SIGKILL', 1_000);
  for (const pid of dir ? childPids(path.join(dir, 'run')) : []) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone, as it should be.
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = start = undefined;
});

// Running to completion is covered in cluster.test.ts.

/** Pids of the coordinator and peers, from their JSON logs. */
function childPids(runDir: string): number[] {
  const logs = path.join(runDir, 'logs');
  if (!existsSync(logs)) return [];
  return readdirSync(logs).flatMap((file) => {
    const first = readFileSync(path.join(logs, file), 'utf8').split('\n').find((line) => line.startsWith('{'));
    return first ? [(JSON.parse(first) as { pid: number }).pid] : [];
  });
}

function startCluster(args: string[]): ManagedChild {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rp-start-'));
  start = new ManagedChild({ name: 'npm start', script: START, args: ['--run-dir', path.join(dir, 'run'), ...args], env: { ...process.env, RINGPIPE_LOG_FORMAT: 'json' } });
  return start;
}

describe('npm start: stopping the local cluster', () => {
  it('Ctrl+C: the coordinator checkpoints, every process exits, and the way to continue is printed', async () => {
    const launcher = startCluster(['--peers', '2', '--max-steps', '100000']);
    const metrics = path.join(dir!, 'run', 'metrics.jsonl');
    await ClusterHarness.until(() => existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 12, 90_000, 'ten training steps');
    launcher.process.kill('SIGINT');
    const exit = await within(launcher.exited, 45_000, 'npm start stopping after Ctrl+C');
    expect(exit.code, launcher.stderr).toBe(130);
    const output = launcher.lines.join('\n');
    const checkpoint = /newest checkpoint (\S+)/.exec(output)?.[1];
    expect(checkpoint, output).toBeDefined();
    expect(existsSync(path.join(checkpoint!, 'manifest.json'))).toBe(true);
    expect(Number(/step-(\d+)/.exec(checkpoint!)?.[1])).toBeGreaterThanOrEqual(10);
    expect(output).toMatch(/to continue from it: npm run coordinator -- --run-dir \S+ --min-peers 2 --max-peers 2 --max-steps 100000, then npm run peer \(2×\)/);
    expect(childPids(path.join(dir!, 'run')).filter(isRunning)).toEqual([]);
  });
});
