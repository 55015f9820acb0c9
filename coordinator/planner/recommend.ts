import type { MemoryEstimate } from './memory-estimate.js';
import type { ModelReport } from './model-report.js';
import type { DataParallelPrediction } from './predict-data-parallel.js';
import type { PipelinePrediction } from './predict-pipeline.js';
import { formatBandwidth, formatBytes, formatMs } from './units.js';

export type PlanMode = 'data-parallel' | 'pipeline' | 'single-peer' | 'does-not-fit' | 'no-cluster';

export interface Recommendation {
  mode: PlanMode;
  /** One line. */
  summary: string;
  /** Why, each a sentence with its figures. */
  reasons: string[];
  /** What may go wrong even though the plan says it fits. */
  warnings: string[];
  /** The settings to run it with. */
  settings?: { replicas?: number; stages?: number; balance?: number[]; microBatches?: number; schedule?: string; rematerialize?: boolean; batchSize: number };
}

export interface RecommendInput {
  model: ModelReport;
  bubbleTarget: number;
  dataParallel?: DataParallelPrediction;
  pipelines: PipelinePrediction[];
  singlePeerFits?: boolean;
  pipelineAsked?: boolean;
  peers?: number;
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

export function describeMemory(memory: MemoryEstimate): string {
  const parts = [
    `weights ${formatBytes(memory.weightsBytes)}`,
    `gradients ${formatBytes(memory.gradientsBytes)}`,
    `optimizer state ${formatBytes(memory.optimizerStateBytes)}`,
    ...(memory.exchangeBufferBytes > 0 ? [`exchange buffer ${formatBytes(memory.exchangeBufferBytes)}`] : []),
    `activations ${formatBytes(memory.activationBytes)}`,
    `runtime ${formatBytes(memory.runtimeBytes)}`,
  ];
  return `${formatBytes(memory.totalBytes)} (${parts.join(', ')})`;
}

function pipelineReasons(p: PipelinePrediction, bubbleTarget: number): string[] {
  const reasons = [
    `split into ${p.stages} stages of [${p.balance.join(', ')}] layers, balanced by the measured per-layer times; ` +
      p.stagePlans.map((s) => `stage ${s.index} on ${s.peer}: ${s.layerNames.join(' + ')}, forward ${formatMs(s.forwardMs)} + backward ${formatMs(s.backwardMs)} per micro-batch, needs ${formatBytes(s.memory.totalBytes)} of ${formatBytes(s.memoryBytes)}`).join('; '),
    `M = ${p.microBatches} micro-batches keep the bubble (K − 1)/(M + K − 1) at ${pct(p.bubbleTheory)}${p.bubbleTheory <= bubbleTarget + 1e-9 ? ` (target ≤ ${pct(bubbleTarget)})` : `, above the ${pct(bubbleTarget)} target: the batch cannot be split further`}; the simulation, with unequal stages, links and updates, predicts ${pct(p.bubblePredicted)} idle`,
    `predicted step ${formatMs(p.stepMs)} (${p.samplesPerSecond.toFixed(0)} samples/s); other M: ${p.byMicroBatches.map((b) => `M=${b.microBatches} ${formatMs(b.stepMs)}`).join(', ')}`,
  ];
  const fastest = p.byMicroBatches.reduce((a, b) => (b.stepMs < a.stepMs ? b : a), p.byMicroBatches[0]!);
  if (fastest && fastest.microBatches !== p.microBatches && fastest.stepMs < p.stepMs * 0.9) {
    reasons.push(
      `M = ${fastest.microBatches} would be faster here (${formatMs(fastest.stepMs)}) despite its ${pct(fastest.bubbleTheory)} bubble: each micro-batch pays fixed costs (kernel set-up, messages) that the measured per-layer times include`,
    );
  }
  if (p.schedule === '1f1b') reasons.push(`schedule 1F1B${p.rematerialize ? ' with re-materialisation' : ''}: GPipe would hold every micro-batch's activations and not fit`);
  return reasons;
}

function pipelineWarnings(p: PipelinePrediction): string[] {
  if (p.startupFits) return [];
  return [
    `today each stage process builds the whole model before freeing the other stages' weights (peer/pipeline/launch), so it needs ${formatBytes(p.startupBytes)} at start-up, more than a peer has: building only the stage's layers is the pipeline's next step`,
  ];
}

function pipelineSettings(p: PipelinePrediction, batchSize: number): Recommendation['settings'] {
  return { stages: p.stages, balance: p.balance, microBatches: p.microBatches, schedule: p.schedule, rematerialize: p.rematerialize, batchSize };
}

/** Chooses between one peer, data parallel and a pipeline, by fit first and predicted throughput second. */
export function recommend(input: RecommendInput): Recommendation {
  const { model, dataParallel: dp, pipelines, bubbleTarget } = input;
  const batchSize = model.batchSize;
  if (!dp) {
    return {
      mode: 'no-cluster',
      summary: 'model measured; give the peers (--peers N --peer-memory SIZE --link RATE, --peers N --local, --peers peers.json or --discover) for a recommendation',
      reasons: [],
      warnings: [],
    };
  }
  const replica = dp.peers.reduce((a, b) => (b.memoryBytes - b.memory.totalBytes < a.memoryBytes - a.memory.totalBytes ? b : a));
  const fitReason = `a data-parallel replica (local batch ${replica.localBatch}) needs ${describeMemory(replica.memory)}; the tightest peer, ${replica.name}, has ${formatBytes(replica.memoryBytes)}`;
  const best = pipelines[0];
  if (!dp.fits) {
    if (!best) {
      return {
        mode: 'does-not-fit',
        summary: `does not fit: not on one peer, and no split into 2–${Math.min(input.peers ?? 2, model.layers.length)} pipeline stages fits these peers`,
        reasons: [
          fitReason,
          `weights + gradients + optimizer state alone are ${formatBytes(model.weightsBytes + model.gradientsBytes + model.optimizerStateBytes)}; each pipeline stage holds its share of them plus activations and the ${formatBytes(model.runtimeBytes)} runtime`,
          'add peers (more stages) or peers with more memory, or lower the batch size (fewer activations held)',
        ],
        warnings: [],
      };
    }
    return {
      mode: 'pipeline',
      summary: `pipeline: ${best.stages} stages [${best.balance.join(', ')}], ${best.microBatches} micro-batches${best.schedule === '1f1b' ? `, 1F1B${best.rematerialize ? ' + re-materialisation' : ''}` : ''}: ${formatMs(best.stepMs)} per step of ${batchSize}`,
      reasons: [`the model does not fit one peer: ${fitReason}`, ...pipelineReasons(best, bubbleTarget)],
      warnings: pipelineWarnings(best),
      settings: pipelineSettings(best, batchSize),
    };
  }

  const dpReason =
    `data parallel over ${dp.replicas} peers: predicted step ${formatMs(dp.stepMs)} = compute ${formatMs(Math.max(...dp.peers.map((p) => p.computeMs)))} ` +
    `+ ring all-reduce ${formatMs(dp.allReduce.ms)} (${formatBytes(dp.allReduce.bytes)} of gradients, 2(n−1)/n · bytes at ${formatBandwidth(dp.allReduce.bytesPerSecond)}, ${formatMs(dp.allReduce.latencyMs)} latency) ` +
    `+ update ${formatMs(Math.max(...dp.peers.map((p) => p.updateMs)))}${dp.stragglerMs > 0 ? ` + waiting for the slowest replica ${formatMs(dp.stragglerMs)} (jitter of a shared host)` : ''}: ${dp.samplesPerSecond.toFixed(0)} samples/s, scaling efficiency ${pct(dp.efficiency)}`;
  const singleReason = `one peer alone (${dp.singlePeer.name}): ${formatMs(dp.singlePeer.stepMs)} per step, ${dp.singlePeer.samplesPerSecond.toFixed(0)} samples/s`;
  const shared = dp.peers.filter((p) => p.coreShare < 0.999);
  const sharingReason = shared.length > 0 ? [`peers sharing a host get ${shared.map((p) => `${p.name} ${p.coreShare.toFixed(2)}`).join(', ')} of a core each while all compute`] : [];
  const options: { mode: PlanMode; samplesPerSecond: number }[] = [];
  if (dp.replicas > 1) options.push({ mode: 'data-parallel', samplesPerSecond: dp.samplesPerSecond });
  if (input.singlePeerFits !== false) options.push({ mode: 'single-peer', samplesPerSecond: dp.singlePeer.samplesPerSecond });
  if (best) options.push({ mode: 'pipeline', samplesPerSecond: best.samplesPerSecond });
  const choice = options.reduce((a, b) => (b.samplesPerSecond > a.samplesPerSecond ? b : a));
  const pipelineComparison = best ? [`${best.stages}-stage pipeline (asked for): ${formatMs(best.stepMs)} per step, ${best.samplesPerSecond.toFixed(0)} samples/s`] : [];

  if (choice.mode === 'pipeline' && best) {
    return {
      mode: 'pipeline',
      summary: `pipeline: ${best.stages} stages [${best.balance.join(', ')}], ${best.microBatches} micro-batches: ${formatMs(best.stepMs)} per step of ${batchSize}, faster than data parallel here`,
      reasons: [`the model fits one peer: ${fitReason}`, ...pipelineReasons(best, bubbleTarget), dpReason, singleReason],
      warnings: pipelineWarnings(best),
      settings: pipelineSettings(best, batchSize),
    };
  }
  if (choice.mode === 'single-peer') {
    return {
      mode: 'single-peer',
      summary: `train on one peer: ${formatMs(dp.singlePeer.stepMs)} per step of ${batchSize}${dp.replicas > 1 ? `; data parallel over ${dp.replicas} peers would be slower (${formatMs(dp.stepMs)})` : ''}`,
      reasons: [`the model fits one peer: ${fitReason}`, singleReason, ...(dp.replicas > 1 ? [dpReason, ...sharingReason] : []), ...pipelineComparison],
      warnings: [],
      settings: { replicas: 1, batchSize },
    };
  }
  return {
    mode: 'data-parallel',
    summary: `data parallel over ${dp.replicas} peers: ${formatMs(dp.stepMs)} per step of ${batchSize} (${dp.samplesPerSecond.toFixed(0)} samples/s, ${pct(dp.efficiency)} scaling efficiency)`,
    reasons: [`the model fits one peer: ${fitReason}`, dpReason, ...sharingReason, singleReason, ...pipelineComparison],
    warnings: dp.efficiency < 0.5 ? [`scaling efficiency is only ${pct(dp.efficiency)}: a larger batch per peer or a faster link would help`] : [],
    settings: { replicas: dp.replicas, batchSize },
  };
}
