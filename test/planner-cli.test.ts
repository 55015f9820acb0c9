import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../scripts/plan.js';
import type { CapacityPlan } from '../coordinator/planner/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ringpipe-plan-'));
  process.env.RINGPIPE_LOG_LEVEL = 'warn';
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `npm run plan -- …` in this process; returns its exit code and what it printed. */
async function plan(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('npm run plan', () => {
  it('refuses bad flags before measuring anything, saying what to give', async () => {
    expect(await plan(['--discover'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--discover needs --cluster NAME/) });
    expect(await plan(['--local'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--local needs --peers N/) });
    expect(await plan(['--peers', '2', '--peer-memory', 'lots'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--peer-memory: cannot read 'lots' as a size/) });
    expect(await plan(['--peers', '2', '--link', 'fast'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--link: cannot read 'fast' as a bandwidth/) });
    expect(await plan(['--bubble', '2'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--bubble is a fraction/) });
    expect(await plan(['--balance', '2,x'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--balance must list positive layer counts/) });
    expect(await plan(['--peers', path.join(dir, 'missing.json')])).toMatchObject({ code: 2, stderr: expect.stringMatching(/cannot be read \(ENOENT\)/) });
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify([{ memory: '2GiB' }, { link: '1Gbit' }, { memory: '1 bucket' }]));
    const result = await plan(['--peers', bad]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/invalid peers file .*bad\.json:\n {2}- 1\.memory:/);
  });

  it('measures a zoo model and plans it on peers from a file, as JSON for the dashboard', async () => {
    const peers = path.join(dir, 'peers.json');
    await writeFile(peers, JSON.stringify({ peers: [{ name: 'a', memory: '4GiB', link: '1Gbit' }, { name: 'b', memory: '4GiB', link: '1Gbit' }], latency: 0.2 }));
    const result = await plan(['--model', 'mlp', '--batch', '32', '--repeats', '1', '--backend', 'wasm', '--peers', peers, '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as CapacityPlan;
    expect(parsed.model.parameters).toBe(535_818);
    expect(parsed.model.weightsBytes).toBe(535_818 * 4);
    expect(parsed.model.optimizerStateBytes).toBe(2 * 535_818 * 4);
    expect(parsed.model.layers.map((l) => l.className)).toEqual(['Flatten', 'Dense', 'Dense', 'Dense']);
    // Forward: 2 · (784·512 + 512·256 + 256·10) multiply-adds, plus biases and relus.
    expect(parsed.model.flopsPerSample.forward).toBe(2 * (784 * 512 + 512 * 256 + 256 * 10) + (512 + 256 + 10) + (512 + 256));
    expect(parsed.cluster?.peers.map((p) => p.name)).toEqual(['a', 'b']);
    expect(parsed.dataParallel?.fits).toBe(true);
    expect(['data-parallel', 'single-peer']).toContain(parsed.recommendation.mode);
  });
});
