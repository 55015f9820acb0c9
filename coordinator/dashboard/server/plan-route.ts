import { LivePlanner, type LivePeer } from '../../planner/live-plan.js';
import type { DashboardSource } from '../model/dashboard-source.js';

/**
 * The capacity planner for the cluster this coordinator runs (`GET /api/plan`): the job's model,
 * planned on the connected peers. In data-parallel mode each peer's reported compute time per step
 * gives its measured speed.
 */
export function createLivePlanner(source: DashboardSource): LivePlanner {
  const { job, registry } = source;
  const computeMs = new Map<string, number>();
  registry.on('progress', (peer, message) => {
    if (message.computeMs !== undefined && message.computeMs > 0) computeMs.set(peer.nodeId, message.computeMs);
  });
  const livePeers = (): LivePeer[] => {
    const peers = registry.all().filter((peer) => peer.status !== 'unfit');
    return peers.map((peer) => {
      const measured = job.mode === 'data-parallel' ? computeMs.get(peer.nodeId) : undefined;
      return {
        nodeId: peer.nodeId,
        address: peer.address,
        ...(peer.hostname ? { hostname: peer.hostname } : {}),
        ...(peer.prepared?.backend ? { backend: peer.prepared.backend } : {}),
        ...(measured !== undefined ? { measuredStep: { computeMs: measured, localBatch: Math.max(1, Math.round(job.batchSize / peers.length)) } } : {}),
      };
    });
  };
  return new LivePlanner({ model: job.model, batchSize: job.batchSize, optimizer: job.optimizer, backend: job.backend }, livePeers);
}
