import { costAt, subtractCosts } from './linear-cost.js';
import type { ModelMeasurements } from './model-measurements.js';

/**
 * The work of a run of consecutive layers (a pipeline stage, or the whole model), in milliseconds
 * of one core of this machine: measured CPU time. A peer of relative speed s that gets c cores does
 * w ms of work in w / (s · c) ms.
 */
export interface LayerRange {
  from: number;
  /** Exclusive. */
  to: number;
}

export const wholeModel = (m: ModelMeasurements): LayerRange => ({ from: 0, to: m.layers.length });

/** Index of the first layer with trainable weights: nothing before it (or its own input) needs an input gradient. */
export function firstWeightedLayer(m: ModelMeasurements): number {
  const index = m.layers.findIndex((l) => l.trainableParameters > 0);
  return index === -1 ? m.layers.length : index;
}

/** Forward of `samples` through the range; the last range also computes the loss (its forward and backward). */
export function forwardWork(m: ModelMeasurements, range: LayerRange, samples: number): number {
  let ms = 0;
  for (let i = range.from; i < range.to; i++) ms += costAt(m.layers[i]!.forward, samples);
  if (range.to === m.layers.length) ms += costAt(m.loss, samples);
  return ms;
}

/** Backward of one layer on `samples`: weight gradients, and the input gradient when someone needs it. */
export function layerBackwardWork(m: ModelMeasurements, index: number, samples: number, inputGradient: boolean): number {
  const layer = m.layers[index]!;
  return costAt(subtractCosts(inputGradient ? layer.forwardBackward : layer.weightGradientsOnly, layer.forward), samples);
}

/**
 * Backward of `samples` through the range: weight gradients, and input gradients where someone needs
 * them (not for the layers up to the first weighted one when the range starts at the model's input).
 */
export function backwardWork(m: ModelMeasurements, range: LayerRange, samples: number): number {
  const first = firstWeightedLayer(m);
  let total = 0;
  for (let i = range.from; i < range.to; i++) total += layerBackwardWork(m, i, samples, !(range.from === 0 && i <= first));
  return total;
}

const sumOver = (range: LayerRange, pick: (i: number) => number): number => {
  let total = 0;
  for (let i = range.from; i < range.to; i++) total += pick(i);
  return total;
};

export const updateWork = (m: ModelMeasurements, range: LayerRange): number => sumOver(range, (i) => m.layers[i]!.updateMs);
export const accumulateWork = (m: ModelMeasurements, range: LayerRange): number => sumOver(range, (i) => m.layers[i]!.accumulateMs);
export const gradientCopyWork = (m: ModelMeasurements, range: LayerRange): number => sumOver(range, (i) => m.layers[i]!.copyMs);
export const trainableParametersOf = (m: ModelMeasurements, range: LayerRange): number => sumOver(range, (i) => m.layers[i]!.trainableParameters);
export const parametersOf = (m: ModelMeasurements, range: LayerRange): number => sumOver(range, (i) => m.layers[i]!.parameters);

/** Bytes per sample crossing the boundary after the range (float32 activations; their gradients are the same size). */
export const boundaryBytesPerSample = (m: ModelMeasurements, range: LayerRange): number => m.layers[range.to - 1]!.outputValuesPerSample * 4;

/** Bytes per sample the range keeps for its backward pass, when run as one stage (see measure-layer-memory.ts). */
export function keptBytesPerSample(m: ModelMeasurements, range: LayerRange): number {
  return sumOver(range, (i) => m.layers[i]!.keptBytesPerSample - (i > range.from ? m.layers[i]!.sharedWithPreviousBytesPerSample : 0));
}

/** Bytes per sample of the range's input (what re-materialisation keeps instead). */
export function inputBytesPerSample(m: ModelMeasurements, range: LayerRange): number {
  if (range.from === 0) return m.inputShape.reduce((a, b) => a * b, 1) * 4;
  return m.layers[range.from - 1]!.outputValuesPerSample * 4;
}

/** The trainer's own work per step beyond the layers (measure-machinery.ts), 0 when not measured. */
export const stepOverheadWork = (m: ModelMeasurements, samples: number): number => (m.stepOverhead ? costAt(m.stepOverhead, samples) : 0);
