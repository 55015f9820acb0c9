import type { ClusterSpec } from './cluster.js';
import { dataParallelMemory } from './memory-estimate.js';
import type { ModelMeasurements } from './model-measurements.js';
import { reportModel, type ModelReport } from './model-report.js';
import { predictDataParallel, type DataParallelPrediction } from './predict-data-parallel.js';
import { predictPipelines, type PipelinePrediction } from './predict-pipeline.js';
import { recommend, type Recommendation } from './recommend.js';

export interface PlanOptions {
  batchSize: number;
  /** Largest acceptable theoretical bubble (K − 1)/(M + K − 1). Default 0.2. */
  bubbleTarget?: number;
  /** Plan a pipeline even when the model fits one peer. */
  pipeline?: boolean;
  /** Force the stage count K / the micro-batch count M of the pipeline. */
  stages?: number;
  microBatches?: number;
  /** Layers per stage, as given (implies K). */
  balance?: number[];
}

export interface ClusterSummary {
  source: string;
  peers: { name: string; host: string; memoryBytes: number; speed: number; linkBytesPerSecond: number; backend?: string }[];
  hosts: Record<string, { cores: number; competing: number; peersShareGroup: boolean; measuredSharePerPeer?: number[]; measuredJitterMs?: number[] }>;
  loopback?: { bytesPerSecond: number; latencyMs: number };
  networkLatencyMs: number;
}

/** Everything the planner says about a model on a cluster, as data (the CLI prints it, the dashboard shows it). */
export interface CapacityPlan {
  model: ModelReport;
  cluster?: ClusterSummary;
  /** Whole model on one peer: memory for the whole mini-batch. */
  singlePeerFits?: boolean;
  dataParallel?: DataParallelPrediction;
  /** Feasible pipelines, fastest first (planned when the model does not fit, or when asked). */
  pipelines: PipelinePrediction[];
  bubbleTarget: number;
  recommendation: Recommendation;
  assumptions: string[];
}

export const DEFAULT_BUBBLE_TARGET = 0.2;

/** How the prediction model works, said with every plan. */
export const MODEL_ASSUMPTIONS = [
  'compute time = per-layer forward and backward times measured on this machine (line through two batch sizes), scaled by each peer\'s speed and the share of a core it gets',
  'a peer computes on one thread (wasm and cpu backends); on a host not measured, busy peers share its cores fairly (one core each while there are cores; Linux autogroup: one share per session)',
  'data parallel: gradients are exchanged after the whole backward pass (no overlap), ring all-reduce time 2(n−1)·latency + 2(n−1)/n · bytes / bandwidth',
  'pipeline: stages follow their GPipe/1F1B order and wait for their neighbours\' tensors (latency + bytes / bandwidth); simulated event by event',
  'data loading is not counted (it is prefetched off the training thread)',
];

/**
 * The plan for a measured model: what it costs, whether it fits a peer, data-parallel and pipeline
 * predictions, and a recommendation with its reasons. Pure: no measuring, no I/O.
 */
export function planCapacity(m: ModelMeasurements, cluster: ClusterSpec | undefined, options: PlanOptions): CapacityPlan {
  const bubbleTarget = options.bubbleTarget ?? DEFAULT_BUBBLE_TARGET;
  const model = reportModel(m, options.batchSize);
  if (!cluster || cluster.peers.length === 0) {
    return { model, pipelines: [], bubbleTarget, recommendation: recommend({ model, bubbleTarget, pipelines: [] }), assumptions: MODEL_ASSUMPTIONS };
  }
  const singlePeerFits = cluster.peers.some((p) => dataParallelMemory(m, options.batchSize, 1).totalBytes <= p.memoryBytes);
  const dataParallel = predictDataParallel(m, cluster, options.batchSize);
  const wantPipeline = options.pipeline || options.stages !== undefined || options.microBatches !== undefined || options.balance !== undefined || !dataParallel.fits;
  const pipelines = wantPipeline
    ? predictPipelines(m, cluster, options.batchSize, {
        bubbleTarget,
        ...(options.stages !== undefined ? { stages: options.stages } : {}),
        ...(options.microBatches !== undefined ? { microBatches: options.microBatches } : {}),
        ...(options.balance !== undefined ? { balance: options.balance } : {}),
      })
    : [];
  const summary: ClusterSummary = {
    source: cluster.source,
    peers: cluster.peers.map((p) => ({ name: p.name, host: p.host, memoryBytes: p.memoryBytes, speed: p.speed, linkBytesPerSecond: p.linkBytesPerSecond, ...(p.backend ? { backend: p.backend } : {}) })),
    hosts: cluster.hosts,
    ...(cluster.loopback ? { loopback: cluster.loopback } : {}),
    networkLatencyMs: cluster.networkLatencyMs,
  };
  return {
    model,
    cluster: summary,
    singlePeerFits,
    dataParallel,
    pipelines,
    bubbleTarget,
    recommendation: recommend({ model, bubbleTarget, dataParallel, pipelines, singlePeerFits, pipelineAsked: wantPipeline && dataParallel.fits, peers: cluster.peers.length }),
    assumptions: [...MODEL_ASSUMPTIONS, ...cluster.assumptions],
  };
}
