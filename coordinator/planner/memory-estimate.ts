import type { ModelMeasurements } from './model-measurements.js';
import { OPTIMIZER_SLOTS } from './optimizer-state.js';
import { inputBytesPerSample, keptBytesPerSample, parametersOf, trainableParametersOf, wholeModel, type LayerRange } from './stage-work.js';

/** What one peer holds while it trains, by kind (float32 everywhere). */
export interface MemoryEstimate {
  /** The Node process and its tensor engine, before any model. */
  runtimeBytes: number;
  weightsBytes: number;
  gradientsBytes: number;
  optimizerStateBytes: number;
  /** Data parallel: the fused gradient buffer the ring all-reduce works in. */
  exchangeBufferBytes: number;
  /** Tensors kept between the forward and the backward pass. */
  activationBytes: number;
  totalBytes: number;
}

function estimate(parts: Omit<MemoryEstimate, 'totalBytes'>): MemoryEstimate {
  const totalBytes = parts.runtimeBytes + parts.weightsBytes + parts.gradientsBytes + parts.optimizerStateBytes + parts.exchangeBufferBytes + parts.activationBytes;
  return { ...parts, totalBytes };
}

/** Model state without runtime or activations: weights, gradients, optimizer state. */
export function modelStateBytes(m: ModelMeasurements, range: LayerRange = wholeModel(m)): { weights: number; gradients: number; optimizerState: number } {
  const trainable = trainableParametersOf(m, range);
  return { weights: parametersOf(m, range) * 4, gradients: trainable * 4, optimizerState: OPTIMIZER_SLOTS[m.optimizer] * trainable * 4 };
}

/** A data-parallel replica: the whole model, its local batch's activations, the exchange buffer. */
export function dataParallelMemory(m: ModelMeasurements, localBatch: number, replicas: number): MemoryEstimate {
  const state = modelStateBytes(m);
  return estimate({
    runtimeBytes: m.runtimeBytes,
    weightsBytes: state.weights,
    gradientsBytes: state.gradients,
    optimizerStateBytes: state.optimizerState,
    exchangeBufferBytes: replicas > 1 ? state.gradients : 0,
    activationBytes: keptBytesPerSample(m, wholeModel(m)) * localBatch,
  });
}

export interface StageMemoryOptions {
  /** Samples whose activations the stage holds at its peak (GPipe: the whole mini-batch). */
  heldSamples: number;
  /** More than one micro-batch: the running gradient sums plus one micro-batch's gradients. */
  accumulates: boolean;
  rematerialize?: boolean;
}

/** A pipeline stage: its layers' state, the activations of the micro-batches it holds. */
export function stageMemory(m: ModelMeasurements, range: LayerRange, options: StageMemoryOptions): MemoryEstimate {
  const state = modelStateBytes(m, range);
  const perSample = options.rematerialize ? inputBytesPerSample(m, range) : keptBytesPerSample(m, range);
  return estimate({
    runtimeBytes: m.runtimeBytes,
    weightsBytes: state.weights,
    gradientsBytes: state.gradients * (options.accumulates ? 2 : 1),
    optimizerStateBytes: state.optimizerState,
    exchangeBufferBytes: 0,
    activationBytes: perSample * options.heldSamples,
  });
}
