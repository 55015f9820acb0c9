import { randomBytes } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advertise, type Advertisement } from '../shared/discovery/index.js';
import { clusterFromDiscovery, discoverPeers, IDLE_HOST, LOCAL_HOST, measureModel, planCapacity } from '../coordinator/planner/index.js';

// mDNS pinned to loopback (DESIGN.md §3): nothing leaves the machine; a random cluster name keeps runs apart.
const clusterName = `plan-${randomBytes(4).toString('hex')}`;
const ads: Advertisement[] = [];

beforeAll(async () => {
  await tf.setBackend('cpu');
  ads.push(await advertise({ clusterName, role: 'peer', nodeId: 'alpha', port: 40001, backend: 'cpu', freeMemoryBytes: 3 * 2 ** 30, interface: '127.0.0.1' }));
  ads.push(await advertise({ clusterName, role: 'peer', nodeId: 'beta', port: 40002, backend: 'wasm', freeMemoryBytes: 2 * 2 ** 30, interface: '127.0.0.1' }));
});
afterAll(async () => {
  await Promise.all(ads.map((ad) => ad.stop()));
});

describe('planning for the peers of a running cluster', () => {
  it('finds them live on mDNS and plans with their advertised memory', async () => {
    const nodes = await discoverPeers({ clusterName, interface: 'lo', waitMs: 1_500 });
    expect(nodes.map((n) => n.nodeId).sort()).toEqual(['alpha', 'beta']);

    const cluster = clusterFromDiscovery(nodes, { backend: 'cpu', clusterName, loopback: { bytesPerSecond: 1e9, latencyMs: 0.1 }, localLoad: IDLE_HOST(2) });
    const byName = Object.fromEntries(cluster.peers.map((p) => [p.name, p]));
    expect(byName.alpha).toMatchObject({ host: LOCAL_HOST, memoryBytes: 3 * 2 ** 30, backend: 'cpu' });
    expect(byName.beta).toMatchObject({ host: LOCAL_HOST, memoryBytes: 2 * 2 ** 30, backend: 'wasm' });
    // A peer on another engine than this machine's may be much faster or slower: the plan says so.
    expect(cluster.assumptions.join('\n')).toMatch(/beta \(wasm\)/);

    const model = tf.sequential({ layers: [tf.layers.dense({ units: 32, activation: 'relu', inputShape: [16] }), tf.layers.dense({ units: 10 })] });
    const measurements = measureModel(model, { name: 'small', backend: 'cpu', optimizer: 'adam', batchSize: 32, repeats: 1 });
    const plan = planCapacity(measurements, cluster, { batchSize: 32 });
    expect(plan.cluster?.source).toMatch(new RegExp(`2 peers of cluster "${clusterName}" discovered on mDNS`));
    expect(plan.dataParallel?.replicas).toBe(2);
    expect(plan.dataParallel?.fits).toBe(true);
    model.dispose();
  });
});
