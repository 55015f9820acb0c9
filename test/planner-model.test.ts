import { describe, expect, it } from 'vitest';
import { stageSchedule, theoreticalBubble } from '../peer/pipeline/schedule/schedule.js';
import { balanceWithinMemory } from '../coordinator/planner/balance-within-memory.js';
import { peerCoreShare, competingFromShare, IDLE_HOST } from '../coordinator/planner/host-sharing.js';
import { fitLinear } from '../coordinator/planner/linear-cost.js';
import { kappaOf, sampleDuration } from '../coordinator/planner/jitter.js';
import { Prng } from '../shared/random/prng.js';
import { microBatchesForBubble } from '../coordinator/planner/predict-pipeline.js';
import { localBatches, ringAllReduceMs } from '../coordinator/planner/predict-data-parallel.js';
import { simulatePipeline, type SimulatedStage } from '../coordinator/planner/simulate-pipeline.js';
import { formatBytes, parseBandwidth, parseBytes } from '../coordinator/planner/units.js';

function stages(options: { K: number; M: number; forward: number; backward: number; transferMs?: number; update?: number; host?: (s: number) => string; rate?: (busy: number) => number; kind?: 'gpipe' | '1f1b' }): SimulatedStage[] {
  return Array.from({ length: options.K }, (_, s) => ({
    host: options.host?.(s) ?? `host ${s}`,
    ops: stageSchedule(options.kind ?? 'gpipe', { stage: s, stages: options.K, microBatches: options.M }),
    forwardWork: new Array<number>(options.M).fill(options.forward),
    backwardWork: new Array<number>(options.M).fill(options.backward),
    accumulateWork: 0,
    updateWork: options.update ?? 0,
    rate: options.rate ?? (() => 1),
    transferMs: new Array<number>(options.M).fill(options.transferMs ?? 0),
  }));
}

describe('pipeline simulation', () => {
  it('reproduces GPipe: equal stages and free links take (M + K − 1)(F + B), idle (K − 1)/(M + K − 1)', () => {
    for (const [K, M] of [[2, 1], [2, 4], [3, 2], [4, 8]] as const) {
      for (const kind of ['gpipe', '1f1b'] as const) {
        const result = simulatePipeline(stages({ K, M, forward: 2, backward: 5, kind }));
        expect(result.stepMs).toBeCloseTo((M + K - 1) * 7, 6);
        expect(result.bubble).toBeCloseTo(theoreticalBubble(K, M), 6);
      }
    }
  });

  it('adds every link crossing on the critical path, and the update at the end', () => {
    // K = 2, M = 1: F0, send, F1 B1, send back, B0, update: 2 + 3 + 2 + 5 + 3 + 5 + 4.
    const result = simulatePipeline(stages({ K: 2, M: 1, forward: 2, backward: 5, transferMs: 3, update: 4 }));
    expect(result.stepMs).toBeCloseTo(2 + 3 + 2 + 5 + 3 + 5 + 4, 6);
  });

  it('slows stages that compute at the same time on one host', () => {
    const separate = simulatePipeline(stages({ K: 2, M: 8, forward: 2, backward: 5 })).stepMs;
    // One core shared: two busy stages each at half speed.
    const shared = simulatePipeline(stages({ K: 2, M: 8, forward: 2, backward: 5, host: () => 'one', rate: (busy) => 1 / busy })).stepMs;
    expect(shared).toBeGreaterThan(separate * 1.5);
    // On one core the work cannot take less than its sum: 2 stages × 8 micro-batches × 7.
    expect(shared).toBeGreaterThanOrEqual(2 * 8 * 7 - 1e-6);
  });
});

describe('jitter of a shared host', () => {
  it('samples pass times with the measured mean and variance (variance = κ · mean)', () => {
    const prng = new Prng(1);
    const samples = Array.from({ length: 20_000 }, () => sampleDuration(10, 4, prng));
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(mean).toBeCloseTo(10, 0);
    expect(kappaOf(samples)).toBeCloseTo(4, 0);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(sampleDuration(10, 0, prng)).toBe(10);
  });

  it('makes a pipeline slower than its mean passes: each wait is for the later of two', () => {
    const steady = simulatePipeline(stages({ K: 2, M: 4, forward: 2, backward: 5 })).stepMs;
    const jittery = simulatePipeline(stages({ K: 2, M: 4, forward: 2, backward: 5 }).map((stage) => ({ ...stage, jitterMs: () => 3 })));
    expect(jittery.stepMs).toBeGreaterThan(steady * 1.05);
    // Same seed, same answer: plans repeat.
    expect(simulatePipeline(stages({ K: 2, M: 4, forward: 2, backward: 5 }).map((stage) => ({ ...stage, jitterMs: () => 3 }))).stepMs).toBe(jittery.stepMs);
  });
});

describe('data-parallel cost', () => {
  it('rings: 2(n − 1) latencies + 2(n − 1)/n · bytes / bandwidth; nothing for one peer', () => {
    expect(ringAllReduceMs(1e6, 1, 1e8, 1)).toBe(0);
    expect(ringAllReduceMs(1e6, 2, 1e8, 0.5)).toBeCloseTo(2 * 0.5 + 10, 9);
    expect(ringAllReduceMs(4e6, 4, 1e9, 0)).toBeCloseTo(1.5 * 4, 9);
  });

  it('splits the global batch like the data pipeline (sizes differ by at most one)', () => {
    expect(localBatches(128, 2)).toEqual([64, 64]);
    expect(localBatches(10, 3)).toEqual([4, 3, 3]);
  });
});

describe('peers sharing a host', () => {
  it('gives each busy peer a core on an idle host while there are cores', () => {
    expect(peerCoreShare(IDLE_HOST(2), 1)).toBe(1);
    expect(peerCoreShare(IDLE_HOST(2), 2)).toBe(1);
    expect(peerCoreShare(IDLE_HOST(2), 4)).toBeCloseTo(0.5, 9);
  });

  it('splits one scheduling group between its peers, where separate sessions each get a share', () => {
    // One busy thread of ours got 0.35 of a core on 2 cores: 2 / 0.35 − 1 ≈ 4.7 competitors.
    const competing = competingFromShare(2, 0.35);
    expect(competing).toBeCloseTo(2 / 0.35 - 1, 9);
    const alone = peerCoreShare({ cores: 2, competing, peersShareGroup: false }, 1);
    expect(alone).toBeCloseTo(0.35, 6);
    expect(peerCoreShare({ cores: 2, competing, peersShareGroup: false }, 2)).toBeCloseTo(2 / (competing + 2), 6);
    expect(peerCoreShare({ cores: 2, competing, peersShareGroup: true }, 2)).toBeCloseTo(0.35 / 2, 6);
  });

  it('uses measured shares where the planner measured them', () => {
    const host = { cores: 2, competing: 3, peersShareGroup: false, measuredSharePerPeer: [0.4, 0.3] };
    expect(peerCoreShare(host, 1)).toBe(0.4);
    expect(peerCoreShare(host, 2)).toBe(0.3);
    expect(peerCoreShare(host, 3)).toBeLessThan(0.3);
  });
});

describe('choosing splits and micro-batches', () => {
  it('picks the fewest micro-batches that keep the bubble under the target', () => {
    expect(microBatchesForBubble(2, 0.2, 128)).toBe(4);
    expect(theoreticalBubble(2, 4)).toBeLessThanOrEqual(0.2);
    expect(theoreticalBubble(2, 3)).toBeGreaterThan(0.2);
    expect(microBatchesForBubble(4, 0.1, 128)).toBe(27);
    expect(microBatchesForBubble(4, 0.1, 16)).toBe(16);
  });

  it('balances time within memory, and says when nothing fits', () => {
    // Layer 0 is heavy in memory: it must sit alone even though time would pair it.
    const costs = [1, 1, 1, 1];
    const memory = [8, 1, 1, 1];
    const fits = (_stage: number, from: number, to: number) => memory.slice(from, to).reduce((a, b) => a + b, 0) <= 8;
    expect(balanceWithinMemory(costs, 2, fits)).toEqual([1, 3]);
    expect(balanceWithinMemory(costs, 2, () => true)).toEqual([2, 2]);
    expect(balanceWithinMemory(costs, 2, (_s, from, to) => memory.slice(from, to).reduce((a, b) => a + b, 0) <= 7)).toBeUndefined();
  });

  it('fits a line through two measurements, never below zero', () => {
    expect(fitLinear({ samples: 16, ms: 3 }, { samples: 128, ms: 17 })).toEqual({ fixedMs: 1, perSampleMs: 0.125 });
    expect(fitLinear({ samples: 16, ms: 1 }, { samples: 128, ms: 64 }).fixedMs).toBe(0);
    expect(fitLinear({ samples: 16, ms: 10 }, { samples: 128, ms: 8 })).toEqual({ fixedMs: 8, perSampleMs: 0 });
  });
});

describe('units', () => {
  it('reads sizes and rates as people write them', () => {
    expect(parseBytes('2GiB')).toBe(2 * 2 ** 30);
    expect(parseBytes('1.5GB')).toBe(1.5e9);
    expect(parseBytes('512 MiB')).toBe(512 * 2 ** 20);
    expect(parseBandwidth('1Gbit')).toBe(125e6);
    expect(parseBandwidth('100Mbit/s')).toBe(12.5e6);
    expect(parseBandwidth('10Gbps')).toBe(1.25e9);
    expect(parseBandwidth('125MB/s')).toBe(125e6);
    expect(formatBytes(3 * 2 ** 20)).toBe('3.00 MiB');
  });

  it('refuses what it cannot read, saying how to write it', () => {
    expect(() => parseBytes('2 gigs', '--peer-memory')).toThrow(/--peer-memory: cannot read '2 gigs' as a size; write e\.g\. 2GiB/);
    expect(() => parseBandwidth('125MB', '--link')).toThrow(/--link: cannot read '125MB' as a bandwidth; write e\.g\. 1Gbit/);
  });
});
