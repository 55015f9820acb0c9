// The planner's pipeline crossing cost and the live cluster of the dashboard's plan: pure planning on
// real measurements of a small dense chain (cpu backend), plus one real crossing measurement.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { uniformCluster, LOCAL_HOST } from '../coordinator/planner/cluster.js';
import { IDLE_HOST } from '../coordinator/planner/host-sharing.js';
import { liveCluster } from '../coordinator/planner/live-plan.js';
import { measureCrossing } from '../coordinator/planner/measure-crossing.js';
import { measureModel } from '../coordinator/planner/measure-model.js';
import type { ModelMeasurements } from '../coordinator/planner/model-measurements.js';
import { predictPipelineWith } from '../coordinator/planner/predict-pipeline.js';

let measurements: ModelMeasurements;
beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 64, activation: 'relu', inputShape: [32], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
  model.add(tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  measurements = measureModel(model, { name: 'small-chain', backend: 'cpu', optimizer: 'sgd', batchSize: 16, repeats: 1, runtimeBytes: 1 << 20 });
  model.dispose();
});

describe('pipeline crossings', () => {
  it('are measured over real stage links: a fixed cost and a cost per byte, both non-negative', async () => {
    const cost = await measureCrossing({ repeats: 3 });
    expect(cost.fixedMs).toBeGreaterThan(0);
    expect(cost.perByteMs).toBeGreaterThanOrEqual(0);
  });

  it('each pass pays half of each crossing on its stage boundaries', () => {
    const cluster = uniformCluster({ count: 2, memoryBytes: 1 << 30, linkBytesPerSecond: 125e6 });
    const options = { bubbleTarget: 0.2, balance: [1, 1], microBatches: 4 };
    const without = predictPipelineWith(measurements, cluster, 16, 2, options)!;
    const crossing = { fixedMs: 0.5, perByteMs: 0.001 };
    const withCrossings = predictPipelineWith({ ...measurements, crossing }, cluster, 16, 2, options)!;
    // 4 samples of 64 float32 values cross the boundary per micro-batch: 0.5 + 0.001 · 1024 ms, half on each side.
    const half = (0.5 + 0.001 * 4 * 64 * 4) / 2;
    for (const s of [0, 1]) {
      expect(withCrossings.stagePlans[s]!.forwardMs - without.stagePlans[s]!.forwardMs).toBeCloseTo(half, 6);
      expect(withCrossings.stagePlans[s]!.backwardMs - without.stagePlans[s]!.backwardMs).toBeCloseTo(half, 6);
    }
    expect(withCrossings.stepMs).toBeGreaterThan(without.stepMs);
  });
});

describe('the live cluster of a running coordinator', () => {
  it('puts peers of this machine on its host, others on theirs with their measured speed, and lists what it assumed', () => {
    const loopback = { bytesPerSecond: 5e8, latencyMs: 0.5 };
    const cluster = liveCluster(
      [
        { nodeId: 'a', address: '127.0.0.1', hostname: 'here' },
        { nodeId: 'b', address: '127.0.0.1' },
        { nodeId: 'c', address: '10.9.8.7', memoryBytes: 2 ** 30, measuredStep: { computeMs: 1, localBatch: 16 } },
        { nodeId: 'd', address: '10.9.8.6' },
      ],
      { loopback, localLoad: IDLE_HOST(2), measurements },
    );
    expect(cluster.peers.map((p) => p.host)).toEqual([LOCAL_HOST, LOCAL_HOST, '10.9.8.7', '10.9.8.6']);
    expect(cluster.peers[0]!.name).toBe('a (here)');
    expect(cluster.peers[0]!.linkBytesPerSecond).toBe(loopback.bytesPerSecond);
    expect(cluster.peers[2]!.memoryBytes).toBe(2 ** 30);
    expect(cluster.peers[2]!.speed).toBeGreaterThan(0);
    expect(cluster.peers[2]!.speed).not.toBe(1);
    expect(cluster.peers[3]!.speed).toBe(1);
    const said = cluster.assumptions.join('\n');
    expect(said).toMatch(/did not advertise their memory/);
    expect(said).toMatch(/without a measured step/);
  });
});
