import { balanceByCost, checkBalance } from '../../peer/pipeline/partition/balance.js';
import { microBatchSizes } from '../../peer/pipeline/microbatch.js';
import { stageSchedule, theoreticalBubble, type ScheduleKind } from '../../peer/pipeline/schedule/schedule.js';
import { balanceWithinMemory } from './balance-within-memory.js';
import { linkBetween, type ClusterSpec, type PeerSpec } from './cluster.js';
import { hostJitterMs, peerCoreShare } from './host-sharing.js';
import { stageMemory, type MemoryEstimate } from './memory-estimate.js';
import type { ModelMeasurements } from './model-measurements.js';
import { costAt } from './linear-cost.js';
import { crossingMs } from './measure-crossing.js';
import { simulatePipeline, type SimulatedStage } from './simulate-pipeline.js';
import { accumulateWork, backwardWork, layerBackwardWork, boundaryBytesPerSample, firstWeightedLayer, forwardWork, parametersOf, updateWork, type LayerRange } from './stage-work.js';

export interface PipelineOptions {
  /** Stage count K; default: every K from 2 to min(peers, layers), the fastest that fits. */
  stages?: number;
  /** Micro-batches M; default: the fewest that keep (K − 1)/(M + K − 1) at or under `bubbleTarget`. */
  microBatches?: number;
  bubbleTarget: number;
  /** Layers per stage as given (`--balance 2,2`): predicted as is, instead of balanced here. */
  balance?: number[];
}

/** How a stage keeps what its backward pass needs, cheapest in time first. */
export type StageMemoryMode = { schedule: ScheduleKind; rematerialize: boolean };
const MEMORY_MODES: StageMemoryMode[] = [
  { schedule: 'gpipe', rematerialize: false },
  { schedule: '1f1b', rematerialize: false },
  { schedule: '1f1b', rematerialize: true },
];

export interface StagePlan {
  index: number;
  peer: string;
  host: string;
  /** Layers [from, to). */
  layers: LayerRange;
  layerNames: string[];
  parameters: number;
  memory: MemoryEstimate;
  memoryBytes: number;
  fits: boolean;
  /** Forward and backward of one micro-batch on its peer, alone on its host. */
  forwardMs: number;
  backwardMs: number;
  updateMs: number;
  /** Bytes sent to the next stage per micro-batch (and received back as its gradient). */
  sendBytes: number;
}

export interface PipelinePrediction {
  stages: number;
  balance: number[];
  microBatches: number;
  schedule: ScheduleKind;
  rematerialize: boolean;
  /** (K − 1)/(M + K − 1): equal stages, free links. */
  bubbleTheory: number;
  /** Idle share predicted by the simulation (unequal stages, links, shared cores, updates). */
  bubblePredicted: number;
  /** Per stage, simulated milliseconds of a step spent computing (passes, update) and waiting: to compare with a run's timelines. */
  simulatedBusyMs: number[];
  simulatedIdleMs: number[];
  stepMs: number;
  samplesPerSecond: number;
  stagePlans: StagePlan[];
  fits: boolean;
  /**
   * Today each stage process builds the whole model before freeing the other stages' weights
   * (peer/pipeline/launch): its start-up needs the runtime plus every weight.
   */
  startupBytes: number;
  startupFits: boolean;
  /** The same K with other micro-batch counts: step time against bubble. */
  byMicroBatches: { microBatches: number; stepMs: number; bubbleTheory: number }[];
}

/** The fewest micro-batches keeping the theoretical bubble at or under `target` (at most the batch). */
export function microBatchesForBubble(stages: number, target: number, batchSize: number): number {
  // (K − 1)/(M + K − 1) ≤ t  ⇔  M ≥ (K − 1)(1 − t)/t
  const needed = target <= 0 ? batchSize : Math.ceil(((stages - 1) * (1 - target)) / target - 1e-9);
  return Math.max(1, Math.min(batchSize, needed));
}

/** Peers for K stages: the K with the most memory, in the cluster's order. */
function choosePeers(cluster: ClusterSpec, stages: number): PeerSpec[] {
  const ranked = cluster.peers.map((peer, i) => ({ peer, i })).sort((a, b) => b.peer.memoryBytes - a.peer.memoryBytes || a.i - b.i);
  return ranked.slice(0, stages).sort((a, b) => a.i - b.i).map((r) => r.peer);
}

function rangesOf(balance: readonly number[]): LayerRange[] {
  let from = 0;
  return balance.map((count) => {
    const range = { from, to: from + count };
    from += count;
    return range;
  });
}

function heldSamples(mode: StageMemoryMode, stage: number, stages: number, micro: number[]): number {
  if (mode.schedule === 'gpipe') return micro.reduce((a, b) => a + b, 0);
  // 1F1B: stage s holds at most K − s micro-batches at once (the largest ones, to be safe).
  return micro.slice(0, Math.min(stages - stage, micro.length)).reduce((a, b) => a + b, 0);
}

interface Candidate {
  balance: number[];
  mode: StageMemoryMode;
}

/**
 * A split that fits: balanced by measured time (the pipeline balancer's `balanceByCost` over the
 * profiled per-layer times) if that fits every peer, else the fastest split within the peers' memory,
 * trying schedules that hold less (1F1B, then re-materialisation).
 */
function chooseSplit(m: ModelMeasurements, peers: PeerSpec[], microSizes: number[]): Candidate | undefined {
  const K = peers.length;
  const micro = Math.max(...microSizes);
  const first = firstWeightedLayer(m);
  // Cost of each layer in one micro-batch, independent of the cut (a first stage skips input gradients up to the first weighted layer).
  const costs = m.layers.map((_, i) => forwardWork(m, { from: i, to: i + 1 }, micro) + layerBackwardWork(m, i, micro, i > first));
  const fitsWith = (mode: StageMemoryMode) => (stage: number, from: number, to: number) =>
    stageMemory(m, { from, to }, { heldSamples: heldSamples(mode, stage, K, microSizes), accumulates: microSizes.length > 1, rematerialize: mode.rematerialize }).totalBytes <= peers[stage]!.memoryBytes;
  const timed = balanceByCost(costs, K);
  for (const mode of MEMORY_MODES) {
    const fits = fitsWith(mode);
    if (rangesOf(timed).every((r, s) => fits(s, r.from, r.to))) return { balance: timed, mode };
    const constrained = balanceWithinMemory(costs, K, fits);
    if (constrained) return { balance: constrained, mode };
  }
  return undefined;
}

/** An explicit balance, with the cheapest schedule under which it fits (GPipe if none does: the plan then says it does not fit). */
function givenSplit(m: ModelMeasurements, peers: PeerSpec[], microSizes: number[], balance: number[]): Candidate | undefined {
  if (balance.length !== peers.length) return undefined;
  checkBalance(balance, m.layers.length);
  const ranges = rangesOf(balance);
  const mode = MEMORY_MODES.find((mode) =>
    ranges.every((range, s) => stageMemory(m, range, { heldSamples: heldSamples(mode, s, peers.length, microSizes), accumulates: microSizes.length > 1, rematerialize: mode.rematerialize }).totalBytes <= peers[s]!.memoryBytes),
  );
  return { balance, mode: mode ?? MEMORY_MODES[0]! };
}

function simulate(m: ModelMeasurements, cluster: ClusterSpec, peers: PeerSpec[], balance: number[], mode: StageMemoryMode, microSizes: number[]) {
  const ranges = rangesOf(balance);
  const K = ranges.length;
  const stages: SimulatedStage[] = ranges.map((range, s) => {
    const peer = peers[s]!;
    const host = cluster.hosts[peer.host]!;
    // The pipeline machinery's per-micro-batch cost (measured for a whole-model stage), half on each pass: every stage pays it.
    const machinery = (m.stageOverheadMsPerMicroBatch ?? 0) / 2;
    // Moving a micro-batch's tensor across a boundary (crossing: read out, frame, send; receive, rebuild),
    // split between its two ends: each pass pays half of each crossing on the stage's boundaries.
    const inBytes = s > 0 ? boundaryBytesPerSample(m, ranges[s - 1]!) : 0;
    const outBytes = s < K - 1 ? boundaryBytesPerSample(m, range) : 0;
    const crossings = (b: number) => (inBytes > 0 ? crossingMs(m.crossing, b * inBytes) / 2 : 0) + (outBytes > 0 ? crossingMs(m.crossing, b * outBytes) / 2 : 0);
    const forward = microSizes.map((b) => forwardWork(m, range, b) + machinery + crossings(b));
    const backward = microSizes.map((b, i) => backwardWork(m, range, b) + machinery + crossings(b) + (mode.rematerialize ? forward[i]! - crossings(b) : 0));
    const link = s < K - 1 ? linkBetween(cluster, peer, peers[s + 1]!) : undefined;
    return {
      host: peer.host,
      ops: stageSchedule(mode.schedule, { stage: s, stages: K, microBatches: microSizes.length }),
      forwardWork: forward,
      backwardWork: backward,
      accumulateWork: accumulateWork(m, range),
      // The first stage assembles the next mini-batch after its update, before the next step's first
      // forward that every other stage waits for: in a one-step simulation, part of its step's end.
      updateWork: updateWork(m, range) + (s === 0 && m.batchAssembly ? costAt(m.batchAssembly, microSizes.reduce((a, b) => a + b, 0)) : 0),
      rate: (busy: number) => peer.speed * peerCoreShare(host, busy),
      jitterMs: (busy: number) => hostJitterMs(host, busy),
      transferMs: microSizes.map((b) => (link ? link.latencyMs + ((b * boundaryBytesPerSample(m, range)) / link.bytesPerSecond) * 1000 : 0)),
    };
  });
  return { ranges, stages, result: simulatePipeline(stages) };
}

/** The pipeline for one stage count, or undefined when no split into K stages fits the peers. */
export function predictPipelineWith(m: ModelMeasurements, cluster: ClusterSpec, batchSize: number, stages: number, options: PipelineOptions): PipelinePrediction | undefined {
  if (stages < 2 || stages > m.layers.length || stages > cluster.peers.length) return undefined;
  const peers = choosePeers(cluster, stages);
  const microBatches = options.microBatches ?? microBatchesForBubble(stages, options.bubbleTarget, batchSize);
  const microSizes = microBatchSizes(batchSize, microBatches);
  const split = options.balance ? givenSplit(m, peers, microSizes, options.balance) : chooseSplit(m, peers, microSizes);
  if (!split) return undefined;
  const { ranges, stages: simulated, result } = simulate(m, cluster, peers, split.balance, split.mode, microSizes);
  const stagePlans: StagePlan[] = ranges.map((range, s) => {
    const peer = peers[s]!;
    const memory = stageMemory(m, range, { heldSamples: heldSamples(split.mode, s, stages, microSizes), accumulates: microBatches > 1, rematerialize: split.mode.rematerialize });
    const solo = simulated[s]!.rate(1);
    return {
      index: s,
      peer: peer.name,
      host: peer.host,
      layers: range,
      layerNames: m.layers.slice(range.from, range.to).map((l) => l.name),
      parameters: parametersOf(m, range),
      memory,
      memoryBytes: peer.memoryBytes,
      fits: memory.totalBytes <= peer.memoryBytes,
      forwardMs: simulated[s]!.forwardWork[0]! / solo,
      backwardMs: simulated[s]!.backwardWork[0]! / solo,
      updateMs: simulated[s]!.updateWork / solo,
      sendBytes: s < stages - 1 ? microSizes[0]! * boundaryBytesPerSample(m, range) : 0,
    };
  });
  const startupBytes = m.runtimeBytes + m.parameters * 4;
  const byMicroBatches = [1, 2, 4, 8, 16, 32]
    .filter((count) => count <= batchSize)
    .map((count) => ({ microBatches: count, stepMs: simulate(m, cluster, peers, split.balance, split.mode, microBatchSizes(batchSize, count)).result.stepMs, bubbleTheory: theoreticalBubble(stages, count) }));
  return {
    stages,
    balance: split.balance,
    microBatches,
    schedule: split.mode.schedule,
    rematerialize: split.mode.rematerialize,
    bubbleTheory: theoreticalBubble(stages, microBatches),
    bubblePredicted: result.bubble,
    simulatedBusyMs: result.busyMs,
    simulatedIdleMs: result.idleMs,
    stepMs: result.stepMs,
    samplesPerSecond: (batchSize * 1000) / result.stepMs,
    stagePlans,
    fits: stagePlans.every((p) => p.fits),
    startupBytes,
    startupFits: peers.every((p) => startupBytes <= p.memoryBytes),
    byMicroBatches,
  };
}

/** Every feasible stage count (or the one asked for); the fastest first. */
export function predictPipelines(m: ModelMeasurements, cluster: ClusterSpec, batchSize: number, options: PipelineOptions): PipelinePrediction[] {
  const counts = options.balance ? [options.balance.length] : options.stages ? [options.stages] : Array.from({ length: Math.min(cluster.peers.length, m.layers.length) - 1 }, (_, i) => i + 2);
  return counts
    .map((k) => predictPipelineWith(m, cluster, batchSize, k, options))
    .filter((p): p is PipelinePrediction => p !== undefined)
    .sort((a, b) => a.stepMs - b.stepMs);
}
