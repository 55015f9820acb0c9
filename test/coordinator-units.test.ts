import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { chooseStateSource } from '../coordinator/epoch/choose-state-source.js';
import { parseClusterJob, trajectoryDifferences } from '../coordinator/job/cluster-job.js';
import { dataPositionAfter, globalBatchOf, sliceOfBatch, trainingPlan } from '../coordinator/job/training-plan.js';
import type { PeerRegistry } from '../coordinator/membership/peer-registry.js';
import { LossLog } from '../coordinator/metrics/loss-log.js';
import { RendezvousTimeoutError, waitForPeers } from '../coordinator/rendezvous/wait-for-peers.js';
import { JobValidationError } from '../shared/job/schema.js';

describe('cluster job', () => {
  it('fills defaults for every cluster field and keeps the training job fields', () => {
    const job = parseClusterJob({ model: 'mlp', peers: { min: 2 } });
    expect(job.peers).toEqual({ min: 2, max: 16, graceSeconds: 10, joinTimeoutSeconds: 300, waitSeconds: 120 });
    expect(job.checkpoint).toEqual({ everySteps: 200, everySeconds: 120, keep: 3 });
    expect(job.mode).toBe('data-parallel');
    expect(job.batchSize).toBe(128);
  });

  it('reports every bad field at once, by path, cross-field rules included', () => {
    let error: unknown;
    try {
      parseClusterJob({ peers: { min: 4, max: 2, graceSeconds: -1 }, checkpoint: { everySteps: 1.5 }, stepTimeoutSeconds: 0, mode: 'pipeline', pipeline: { microBatches: 0, balance: [1] } }, 'job (file x.json)');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(JobValidationError);
    const problems = (error as JobValidationError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        'peers.graceSeconds: must be at least 0, got -1',
        'checkpoint.everySteps: must be a whole number, got 1.5',
        'stepTimeoutSeconds: must be greater than 0, got 0',
        'peers.max: must be at least peers.min (4), got 2',
        'pipeline.microBatches: must be at least 1, got 0',
        'pipeline.balance: lists 1 stage but pipeline.stages is 2, got [1]',
      ]),
    );
    expect((error as Error).message).toMatch(/^invalid job \(file x\.json\):/);
    expect(() => parseClusterJob({ batchSize: 4, peers: { max: 8 } })).toThrow(/peers\.max: must be at most batchSize \(4\)/);
  });

  it('names the fields that make a checkpoint belong to another job', () => {
    const saved = parseClusterJob({ batchSize: 64 });
    expect(trajectoryDifferences(saved, parseClusterJob({ batchSize: 64, epochs: 5, peers: { min: 3 } }))).toEqual([]);
    expect(trajectoryDifferences(saved, parseClusterJob({ batchSize: 128, learningRate: 0.01 }))).toEqual(['batchSize: 64 → 128', 'learningRate: 0.001 → 0.01']);
  });
});

describe('training plan: steps over the global batch', () => {
  it('counts steps like the local trainer and maps steps to data positions', () => {
    const plan = trainingPlan({ batchSize: 128, epochs: 2, maxSteps: 0 }, 60_000);
    expect(plan).toMatchObject({ batchesPerEpoch: 468, totalSteps: 936 });
    expect(trainingPlan({ batchSize: 128, epochs: 2, maxSteps: 50 }, 60_000).totalSteps).toBe(50);
    expect(globalBatchOf(plan, 1)).toEqual({ epoch: 0, batch: 0 });
    expect(globalBatchOf(plan, 469)).toEqual({ epoch: 1, batch: 0 });
    expect(dataPositionAfter(plan, 468)).toEqual({ epoch: 1, index: 0 });
    expect(dataPositionAfter(plan, 470)).toEqual({ epoch: 1, index: 256 });
  });

  it('divides a global batch into contiguous, disjoint slices that cover it for any world size', () => {
    for (const batchSize of [1, 7, 64, 128, 129]) {
      for (let world = 1; world <= Math.min(batchSize, 9); world++) {
        const slices = Array.from({ length: world }, (_, rank) => sliceOfBatch(batchSize, rank, world));
        expect(slices[0]!.start).toBe(0);
        expect(slices.at(-1)!.end).toBe(batchSize);
        slices.forEach((slice, rank) => {
          expect(slice.end - slice.start).toBeGreaterThanOrEqual(Math.floor(batchSize / world));
          if (rank > 0) expect(slice.start).toBe(slices[rank - 1]!.end);
        });
      }
    }
  });
});

describe('where an epoch gets its state', () => {
  it('prefers the newest state: survivors in memory, else the newest checkpoint, else fresh weights', () => {
    expect(chooseStateSource([0, 0], undefined)).toEqual({ source: 'fresh', root: 0, startStep: 0 });
    expect(chooseStateSource([0, 0], 400)).toEqual({ source: 'checkpoint', root: 0, startStep: 400 });
    expect(chooseStateSource([0, 517, 516], 400)).toEqual({ source: 'memory', root: 1, startStep: 517 });
    // A tie with the checkpoint needs no transfer: memory.
    expect(chooseStateSource([400, 0], 400)).toEqual({ source: 'memory', root: 0, startStep: 400 });
    // A returning peer that lost its state does not drag the others back.
    expect(chooseStateSource([-1, 300], 200)).toEqual({ source: 'memory', root: 1, startStep: 300 });
  });
});

/** Enough of a PeerRegistry for the rendezvous: a count of prepared peers and events. */
class FakeRegistry extends EventEmitter {
  count = 0;
  prepared(): unknown[] {
    return Array.from({ length: this.count });
  }
  describe(): string {
    return `ready: ${this.count} fake peers`;
  }
  join(): void {
    this.count++;
    this.emit('prepared');
  }
  leave(): void {
    this.count--;
    this.emit('gone');
  }
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const rendezvous = { purpose: 'to start the job', howToJoin: 'Start peers.' };

describe('rendezvous', () => {
  it('starts at once when max peers are ready', async () => {
    const registry = new FakeRegistry();
    const started = performance.now();
    const done = waitForPeers(registry as unknown as PeerRegistry, { ...rendezvous, min: 1, max: 2, graceMs: 10_000, timeoutMs: 10_000 });
    registry.join();
    registry.join();
    await expect(done).resolves.toBe('ready');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('with min peers, waits the grace period, which restarts when the count drops below min', async () => {
    const registry = new FakeRegistry();
    const started = performance.now();
    const done = waitForPeers(registry as unknown as PeerRegistry, { ...rendezvous, min: 2, max: 4, graceMs: 300, timeoutMs: 5_000 });
    registry.join();
    registry.join();
    await wait(200);
    registry.leave();
    await wait(100);
    registry.join();
    await expect(done).resolves.toBe('ready');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(580);
    expect(elapsed).toBeLessThan(2_000);
  });

  it('gives up after the timeout with a message saying how many are missing and what to do', async () => {
    const registry = new FakeRegistry();
    registry.join();
    const done = waitForPeers(registry as unknown as PeerRegistry, { ...rendezvous, min: 3, max: 4, graceMs: 0, timeoutMs: 200 });
    await expect(done).rejects.toThrow(RendezvousTimeoutError);
    await expect(done).rejects.toThrow('gave up after 0 s waiting for peers to start the job: 1 of the 3 needed (peers.min) are ready — ready: 1 fake peers. Start peers.');
  });

  it('returns "cancelled" when stopped while waiting', async () => {
    const registry = new FakeRegistry();
    let cancel!: () => void;
    const cancelled = new Promise<void>((resolve) => (cancel = resolve));
    const done = waitForPeers(registry as unknown as PeerRegistry, { ...rendezvous, min: 1, max: 2, graceMs: 0, timeoutMs: 5_000, cancelled });
    cancel();
    await expect(done).resolves.toBe('cancelled');
  });
});

describe('loss curve', () => {
  it('writes one point per step once every member reported, weighting slices by their size', async () => {
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-loss-'));
    try {
      const points: number[] = [];
      const log = new LossLog(path.join(dir, 'metrics.jsonl'), (point) => points.push(point.loss));
      await log.open();
      log.beginEpoch(3, 2);
      log.report(3, 1, 1.0, 43);
      expect(points).toEqual([]);
      log.report(2, 1, 9.0, 10); // an old epoch's straggler is ignored
      log.report(3, 1, 2.0, 42);
      expect(points[0]).toBeCloseTo((1.0 * 43 + 2.0 * 42) / 85, 10);
      // Steps 2 and 3 were reported by one member only, then the other died: the next epoch starts
      // after step 2, so step 2 was committed (a partial point) and step 3 will be redone.
      log.report(3, 2, 0.8, 43);
      log.report(3, 3, 0.7, 43);
      log.beginEpoch(4, 1);
      log.startsAfter(2);
      log.report(4, 3, 0.5, 85);
      await log.flush();
      const lines = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { step: number; worldSize: number; epoch: number; partial?: boolean; samples: number });
      expect(lines.map((l) => [l.step, l.worldSize, l.epoch, l.samples, l.partial ?? false])).toEqual([
        [1, 2, 3, 85, false],
        [2, 2, 3, 43, true],
        [3, 1, 4, 85, false],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("counts a survivor's report that arrives after its epoch failed, when the next epoch starts after that step", async () => {
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-loss-'));
    try {
      const log = new LossLog(path.join(dir, 'metrics.jsonl'));
      await log.open();
      log.beginEpoch(5, 2);
      // Step 7 finished on both members; one died before reporting it, the other's report was
      // still on the wire when the coordinator moved on to epoch 6 (which starts after step 7).
      log.beginEpoch(6, 1);
      log.report(5, 7, 0.25, 40);
      log.report(5, 8, 0.5, 40); // finished by nobody else: redone by epoch 6, so dropped
      log.startsAfter(7);
      log.report(5, 6, 9, 9); // too late: epoch 5 is settled
      log.report(6, 8, 0.125, 80);
      await log.flush();
      const lines = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { step: number; epoch: number; loss: number; partial?: boolean });
      expect(lines.map((l) => [l.step, l.epoch, l.loss, l.partial ?? false])).toEqual([
        [7, 5, 0.25, true],
        [8, 6, 0.125, false],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
