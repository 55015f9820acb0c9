import { costAt } from './linear-cost.js';
import { modelStateBytes } from './memory-estimate.js';
import type { ModelMeasurements } from './model-measurements.js';
import { backwardWork, firstWeightedLayer, forwardWork, keptBytesPerSample, stepOverheadWork, updateWork, wholeModel } from './stage-work.js';

export interface LayerReport {
  index: number;
  name: string;
  className: string;
  parameters: number;
  /** What crosses a stage boundary placed after this layer, per sample. */
  outputBytesPerSample: number;
  /** What this layer keeps for its backward pass, per sample (activation memory). */
  activationBytesPerSample: number;
  /** Undefined: a layer class whose arithmetic is not counted. */
  forwardFlopsPerSample?: number;
  backwardFlopsPerSample?: number;
  /** On this machine at the plan's batch size, wall clock at the measured load (CPU time ÷ core share). */
  forwardMs: number;
  forwardBackwardMs: number;
}

/** The model on its own: sizes, arithmetic and measured speed on this machine. */
export interface ModelReport {
  model: string;
  backend: string;
  optimizer: string;
  batchSize: number;
  parameters: number;
  trainableParameters: number;
  weightsBytes: number;
  gradientsBytes: number;
  optimizerStateBytes: number;
  /** Activations kept for backward, whole model, per sample. */
  activationBytesPerSample: number;
  runtimeBytes: number;
  /** Per sample; `complete` is false when some layer's FLOPs were not counted (they add 0). */
  flopsPerSample: { forward: number; backward: number; complete: boolean };
  layers: LayerReport[];
  /** One training step of `batchSize` on this machine: the measured per-layer times, loss and update, summed (under its current load). */
  stepMs: number;
  msPerSample: number;
  samplesPerSecond: number;
  /** The same on one idle core of this machine (CPU time). */
  idleCoreMsPerSample: number;
  /** Share of a core the measuring process got, and the load then. */
  coreShare: number;
  loadAverage: number;
  cores: number;
}

export function reportModel(m: ModelMeasurements, batchSize: number): ModelReport {
  const state = modelStateBytes(m);
  const first = firstWeightedLayer(m);
  const layers: LayerReport[] = m.layers.map((l) => ({
    index: l.index,
    name: l.name,
    className: l.className,
    parameters: l.parameters,
    outputBytesPerSample: l.outputValuesPerSample * 4,
    activationBytesPerSample: l.keptBytesPerSample - l.sharedWithPreviousBytesPerSample,
    ...(l.flops
      ? { forwardFlopsPerSample: l.flops.forward, backwardFlopsPerSample: l.flops.backwardWeights + (l.index > first ? l.flops.backwardInput : 0) }
      : {}),
    forwardMs: costAt(l.forward, batchSize) / m.load.coreShare,
    forwardBackwardMs: costAt(l.index <= first ? l.weightGradientsOnly : l.forwardBackward, batchSize) / m.load.coreShare,
  }));
  const range = wholeModel(m);
  const idleCoreStepMs = forwardWork(m, range, batchSize) + backwardWork(m, range, batchSize) + updateWork(m, range) + stepOverheadWork(m, batchSize);
  const stepMs = idleCoreStepMs / m.load.coreShare;
  return {
    model: m.model,
    backend: m.backend,
    optimizer: m.optimizer,
    batchSize,
    parameters: m.parameters,
    trainableParameters: m.trainableParameters,
    weightsBytes: state.weights,
    gradientsBytes: state.gradients,
    optimizerStateBytes: state.optimizerState,
    activationBytesPerSample: keptBytesPerSample(m, range),
    runtimeBytes: m.runtimeBytes,
    flopsPerSample: {
      forward: layers.reduce((n, l) => n + (l.forwardFlopsPerSample ?? 0), 0),
      backward: layers.reduce((n, l) => n + (l.backwardFlopsPerSample ?? 0), 0),
      complete: layers.every((l) => l.forwardFlopsPerSample !== undefined),
    },
    layers,
    stepMs,
    msPerSample: stepMs / batchSize,
    samplesPerSecond: (batchSize * 1000) / stepMs,
    idleCoreMsPerSample: idleCoreStepMs / batchSize,
    coreShare: m.load.coreShare,
    loadAverage: m.load.loadAverage,
    cores: m.load.cores,
  };
}
