import { linkBetween, type ClusterSpec, type PeerSpec } from './cluster.js';
import { Prng } from '../../shared/random/prng.js';
import { hostJitterMs, peerCoreShare } from './host-sharing.js';
import { JITTER_SAMPLES, JITTER_SEED, sampleDuration } from './jitter.js';
import { dataParallelMemory, type MemoryEstimate } from './memory-estimate.js';
import type { ModelMeasurements } from './model-measurements.js';
import { backwardWork, forwardWork, gradientCopyWork, stepOverheadWork, trainableParametersOf, updateWork, wholeModel } from './stage-work.js';

export interface DataParallelPeer {
  name: string;
  host: string;
  localBatch: number;
  /** Cores this peer gets while all replicas compute. */
  coreShare: number;
  computeMs: number;
  /** Copying gradients to and from the exchange buffer, and the optimizer update. */
  updateMs: number;
  memory: MemoryEstimate;
  memoryBytes: number;
  fits: boolean;
}

export interface AllReduceCost {
  bytes: number;
  /** The slowest link of the ring. */
  bytesPerSecond: number;
  latencyMs: number;
  /** 2(n − 1) · latency + 2(n − 1)/n · bytes / bandwidth. */
  ms: number;
}

export interface DataParallelPrediction {
  replicas: number;
  globalBatch: number;
  peers: DataParallelPeer[];
  allReduce: AllReduceCost;
  /** Slowest replica's compute + all-reduce + slowest update (expected, with the host's jitter). */
  stepMs: number;
  /** Of that, what waiting for the slowest replica adds on jittery hosts (0 on idle ones). */
  stragglerMs: number;
  samplesPerSecond: number;
  /** The fastest single peer training the whole batch alone. */
  singlePeer: { name: string; stepMs: number; samplesPerSecond: number };
  /** Throughput ÷ the sum of every peer's throughput alone (1 = perfect scaling). */
  efficiency: number;
  fits: boolean;
}

/** Ring all-reduce of `bytes` over links of `bytesPerSecond` and one-way `latencyMs`, among n peers. */
export function ringAllReduceMs(bytes: number, peers: number, bytesPerSecond: number, latencyMs: number): number {
  if (peers <= 1) return 0;
  return 2 * (peers - 1) * latencyMs + ((2 * (peers - 1)) / peers) * (bytes / bytesPerSecond) * 1000;
}

/** Contiguous slices of the global batch, as the data pipeline splits it (sizes differ by at most one). */
export function localBatches(globalBatch: number, replicas: number): number[] {
  const base = Math.floor(globalBatch / replicas);
  return Array.from({ length: replicas }, (_, i) => base + (i < globalBatch % replicas ? 1 : 0));
}

/** Milliseconds for one peer doing `work` (idle-core ms of this machine) at `coreShare` cores. */
const onPeer = (work: number, peer: PeerSpec, coreShare: number): number => work / (peer.speed * coreShare);

/** The mean over sampled steps of: slowest sampled compute + all-reduce + slowest sampled update. */
function expectedWithStragglers(peers: DataParallelPeer[], jitterMs: number[], allReduceMs: number): number {
  const prng = new Prng(JITTER_SEED);
  let total = 0;
  const samples = JITTER_SAMPLES * 4;
  for (let i = 0; i < samples; i++) {
    const compute = Math.max(...peers.map((p, r) => sampleDuration(p.computeMs, jitterMs[r]!, prng)));
    const update = Math.max(...peers.map((p, r) => sampleDuration(p.updateMs, jitterMs[r]!, prng)));
    total += compute + allReduceMs + update;
  }
  return total / samples;
}

/** A step alone on one peer: the whole batch, no exchange. */
export function singlePeerStepMs(m: ModelMeasurements, cluster: ClusterSpec, peer: PeerSpec, batch: number): number {
  const share = peerCoreShare(cluster.hosts[peer.host]!, 1);
  const range = wholeModel(m);
  return onPeer(forwardWork(m, range, batch) + backwardWork(m, range, batch) + updateWork(m, range) + stepOverheadWork(m, batch), peer, share);
}

/**
 * Data parallel over every peer of the cluster: each computes its slice of the global batch
 * (peers of one host share its cores meanwhile), then the ring all-reduce sums the gradients, then
 * each updates its copy of the weights. tfjs hands out gradients only after the whole backward
 * pass, so the exchange does not overlap compute.
 */
export function predictDataParallel(m: ModelMeasurements, cluster: ClusterSpec, globalBatch: number): DataParallelPrediction {
  const n = cluster.peers.length;
  const range = wholeModel(m);
  const batches = localBatches(globalBatch, n);
  const busyOn = (host: string) => cluster.peers.filter((p) => p.host === host).length;
  const peers: DataParallelPeer[] = cluster.peers.map((peer, i) => {
    const coreShare = peerCoreShare(cluster.hosts[peer.host]!, busyOn(peer.host));
    const localBatch = batches[i]!;
    const memory = dataParallelMemory(m, localBatch, n);
    return {
      name: peer.name,
      host: peer.host,
      localBatch,
      coreShare,
      computeMs: onPeer(forwardWork(m, range, localBatch) + backwardWork(m, range, localBatch) + stepOverheadWork(m, localBatch), peer, coreShare),
      updateMs: onPeer(updateWork(m, range) + (n > 1 ? gradientCopyWork(m, range) : 0), peer, coreShare),
      memory,
      memoryBytes: peer.memoryBytes,
      fits: memory.totalBytes <= peer.memoryBytes,
    };
  });
  const links = cluster.peers.map((peer, i) => linkBetween(cluster, peer, cluster.peers[(i + 1) % n]!));
  const bytes = trainableParametersOf(m, range) * 4;
  const bytesPerSecond = Math.min(...links.map((l) => l.bytesPerSecond));
  const latencyMs = Math.max(...links.map((l) => l.latencyMs));
  const allReduce = { bytes, bytesPerSecond, latencyMs, ms: ringAllReduceMs(bytes, n, bytesPerSecond, latencyMs) };
  const steadyMs = Math.max(...peers.map((p) => p.computeMs)) + allReduce.ms + Math.max(...peers.map((p) => p.updateMs));
  const jitter = cluster.peers.map((peer) => hostJitterMs(cluster.hosts[peer.host]!, busyOn(peer.host)));
  const stepMs = jitter.some((k) => k > 0) ? expectedWithStragglers(peers, jitter, allReduce.ms) : steadyMs;
  const alone = cluster.peers.map((peer) => ({ name: peer.name, stepMs: singlePeerStepMs(m, cluster, peer, globalBatch) }));
  const best = alone.reduce((a, b) => (b.stepMs < a.stepMs ? b : a));
  const samplesPerSecond = (globalBatch * 1000) / stepMs;
  const aloneThroughput = alone.reduce((total, a) => total + (globalBatch * 1000) / a.stepMs, 0);
  return {
    replicas: n,
    globalBatch,
    peers,
    allReduce,
    stepMs,
    stragglerMs: Math.max(0, stepMs - steadyMs),
    samplesPerSecond,
    singlePeer: { name: best.name, stepMs: best.stepMs, samplesPerSecond: (globalBatch * 1000) / best.stepMs },
    efficiency: samplesPerSecond / aloneThroughput,
    fits: peers.every((p) => p.fits),
  };
}
