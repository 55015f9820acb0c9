import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { classifyStall, Dataset, defineTransform, StallMeter, type DataSource, type Sample } from '../shared/data/index.js';
import { busyWait, misnamed } from './fixtures/data-transforms.js';

const source: DataSource<Sample> = { name: 'numbered', size: 200, skipped: [], read: (i) => ({ x: Float32Array.of(i), label: 0 }) };
const silentLog = { info: () => undefined, warn: () => undefined } as never;

describe('stall metric', () => {
  it('classifies like TensorFlow\'s input-pipeline analyser', () => {
    expect([0, 4.99, 5, 20, 20.01, 90].map(classifyStall)).toEqual(['not input-bound', 'not input-bound', 'moderately input-bound', 'moderately input-bound', 'highly input-bound', 'highly input-bound']);
  });

  it('reports totals, a recent window and the last step, and emits every N steps', () => {
    const meter = new StallMeter({ reportEvery: 2, window: 2, log: silentLog });
    const reports: number[] = [];
    meter.onReport((r) => reports.push(r.steps));
    meter.recordWarmup(500);
    meter.record(1, 100);
    meter.record(30, 100);
    meter.record(50, 100);
    const report = meter.snapshot();
    expect(report).toMatchObject({ steps: 3, waitMs: 81, stepMs: 300, stallPercent: 27, recentStallPercent: 40, verdict: 'highly input-bound', warmupMs: 500, lastStep: { waitMs: 50, stepMs: 100, stallPercent: 50 } });
    expect(reports).toEqual([2]);
  });

  it('measures the trainer waiting on a slow pipeline, and not waiting on a fast one', async () => {
    const run = async (slowMs: number, prefetch: number, stepMs: number) => {
      const iterator = Dataset.from(source).map(busyWait.with({ ms: slowMs })).batch(4).prefetch(prefetch).iterate({ stall: { log: silentLog } });
      for (let i = 0; i < 8; i++) {
        await iterator.next();
        await sleep(stepMs); // the "training step"
      }
      await iterator.close();
      return iterator.stall.snapshot();
    };
    const slow = await run(10, 0, 2); // ≥ 40 ms of "decoding" per batch inside next(), 2 ms of training
    expect(slow.steps).toBe(6); // 8 calls: the first is warm-up, the last step is still open
    expect(slow.stallPercent).toBeGreaterThan(40);
    expect(slow.verdict).toBe('highly input-bound');
    const fast = await run(0, 2, 30);
    expect(fast.stallPercent).toBeLessThan(20);
  });
});

describe('worker threads', () => {
  it('never keep the process alive, even when the iterator is not closed', () => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fixtures', 'data-forgotten-iterator.ts')], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, RINGPIPE_LOG_LEVEL: 'warn' } });
    expect(child.error).toBeUndefined(); // a timeout would show up here
    expect(child.stdout).toBe('got a batch of 8\n');
    expect(child.status).toBe(0);
  });

  it('stop on close(), after which next() refuses', async () => {
    const iterator = Dataset.from(source).map(busyWait.with({ ms: 0 }), { parallel: 2 }).batch(8).prefetch(2).iterate();
    await iterator.next();
    await iterator.close();
    await expect(iterator.next()).rejects.toThrow(/closed data iterator/);
  });

  it('explain a transform that is not exported under its name', async () => {
    const iterator = Dataset.from(source).map(misnamed.with({}), { parallel: 1 }).batch(8).iterate();
    await expect(iterator.next()).rejects.toThrow(/data-transforms\.ts has no transform exported as 'notTheExportName': export it as `export const notTheExportName = defineTransform\(import\.meta\.url, 'notTheExportName', fn\)`/);
    await iterator.close();
    // A module that cannot be imported on its own, such as a test file, is named too.
    const inTest = defineTransform(import.meta.url, 'inTest', (s: Sample) => s);
    const failing = Dataset.from(source).map(inTest.with({}), { parallel: 1 }).batch(8).iterate();
    await expect(failing.next()).rejects.toThrow(/cannot load the transform module .*data-stall\.test\.ts in a data worker thread: .*Define transforms in a module that can be imported on its own/);
    await failing.close();
  });
});
