import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { classifyStall, Dataset, defineTransform, StallMeter, type DataSource, type Sample } from '../shared/data/index.js';
import { busyWait, finishSlowly, misnamed } from './fixtures/data-transforms.js';

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
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fixtures', 'data-forgotten-iterator.ts')], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, RINGPIPE_LOG_LEVEL: 'warn' } });
    // A hang would show up here as a timeout. 90 s is generous: on a saturated 2-core machine the
    // child (tsx + two threads each loading tsx) has been seen to need up to ~30 s just to start.
    expect(child.error).toBeUndefined();
    expect(child.stdout).toBe('got a batch of 8\n');
    expect(child.status).toBe(0);
  });

  it('finish the sample in hand on close() instead of being killed mid-call, then exit', async () => {
    // terminate() can interrupt a thread inside zlib (PNG decoding), which aborts Node 20 itself.
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rp-close-')), 'done.txt');
    writeFileSync(file, '');
    const iterator = Dataset.from(source).map(finishSlowly.with({ ms: 300, file }), { parallel: 1 }).batch(2, { chunkSize: 1 }).iterate();
    await iterator.next(); // samples 0 and 1
    const log = () => readFileSync(file, 'utf8').trim().split('\n');
    const deadline = Date.now() + 20_000;
    while (!log().includes('start 2') && Date.now() < deadline) await sleep(10);
    await iterator.close(); // while sample 2 is in hand, and samples 3 and 4 queued for the thread
    // Sample 2 completed; the chunks queued behind it were dropped, not started.
    expect(log()).toEqual(['start 0', 'done 0', 'start 1', 'done 1', 'start 2', 'done 2']);
    rmSync(path.dirname(file), { recursive: true, force: true });
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
