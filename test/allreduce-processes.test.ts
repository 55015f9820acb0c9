import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { launchRing } from '../peer/allreduce/launch/launch-ring.js';
import { allReduceCases, caseExpected } from './fixtures/allreduce-cases.js';

const RANK_SCRIPT = path.join(import.meta.dirname, 'fixtures', 'allreduce-rank.ts');

function sha(buffer: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)).digest('hex');
}

function runRanks(worldSize: number, extraEnv: Record<string, string> = {}) {
  return launchRing({
    worldSize,
    timeoutMs: 60_000,
    collectFailures: 'ALLREDUCE_TEST_DIE_RANK' in extraEnv,
    spawn: (_rank, env) =>
      spawn(process.execPath, ['--import', 'tsx', RANK_SCRIPT], {
        env: { ...process.env, ...env, ...extraEnv, RINGPIPE_LOG_LEVEL: 'warn' },
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
  });
}

describe('ring collectives between processes over authenticated links', () => {
  for (const [worldSize, dataPlane] of [[2, 'tcp'], [3, 'tcp-threaded'], [2, 'link']] as const) {
    it(`${worldSize} processes, ${dataPlane} data plane: every collective gives every rank the expected bits`, async () => {
      const outcomes = await runRanks(worldSize, { ALLREDUCE_TEST_DATA_PLANE: dataPlane });
      for (const [index, c] of allReduceCases.entries()) {
        const results = outcomes.map((o) => o.reports.filter((r) => r.kind === 'case')[index]?.data as { name: string; sha: string; head: number[] });
        for (const result of results) expect(result.name).toBe(c.name);
        // Every rank holds the very same bits…
        expect(new Set(results.map((r) => r.sha)).size).toBe(1);
        if (c.fp16) {
          // …within fp16 rounding of the exact mean (values up to 1000: half ulp ≤ 0.25 per hop).
          const expected = caseExpected(c, worldSize);
          results[0]!.head.forEach((value, i) => expect(Math.abs(value - expected[i]!)).toBeLessThanOrEqual(0.5 * worldSize));
        } else {
          // …and exactly the reference (integer inputs: the sum is exact in any order).
          expect(results[0]!.sha).toBe(sha(caseExpected(c, worldSize)));
        }
      }
    });
  }

  it.each(['tcp', 'tcp-threaded'])('a rank dying mid-collective makes the others fail fast with a clear error, not hang (%s)', async (dataPlane) => {
    const outcomes = await runRanks(3, { ALLREDUCE_TEST_DIE_RANK: '1', ALLREDUCE_TEST_DIE_CASE: 'sum-large', ALLREDUCE_TEST_DATA_PLANE: dataPlane });
    expect(outcomes[1]!.failure).toMatch(/exited with code 3/);
    for (const survivor of [outcomes[0]!, outcomes[2]!]) {
      expect(survivor.failure).toMatch(/failed: .*(closed|connection lost|was reset|broken)/);
      // The receive timeout is 20 s: a survivor that waited for it would be hanging on the dead peer.
      expect(survivor.exitedAfterMs - outcomes[1]!.exitedAfterMs).toBeLessThan(10_000);
    }
  });
});
