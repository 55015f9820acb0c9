import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

// The training loop's optimised pipeline code must not meet new object shapes whenever an
// evaluation builds its own pipeline: that threw the code away and recompiled it after every
// evaluation (V8 deopt log: "wrong map" in the chunk stream). Checked with V8's own map test.
it('chunk ranges of separately made layouts share one V8 map (iterators and range objects)', () => {
  const child = spawnSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', path.join(import.meta.dirname, 'fixtures', 'chunk-shapes-child.ts')], { encoding: 'utf8', timeout: 60_000 });
  expect(child.status, child.stderr).toBe(0);
  expect(JSON.parse(child.stdout)).toEqual({ contiguousIterators: true, splitIterators: true, ranges: true, batchEnds: [64, null, 128] });
}, 60_000);
