import type * as tf from '@tensorflow/tfjs';
import { outputKindOf } from '../../peer/trainer/loss.js';
import { sequentialLayers } from '../../peer/pipeline/partition/sequential-layers.js';
import { profileLayers, type LayerProfile } from '../../shared/profiling/layer-profile.js';
import { layerFlops } from './layer-flops.js';
import { fitLinear } from './linear-cost.js';
import { LoadMeter } from './machine-load.js';
import { measureLayerMemory } from './measure-layer-memory.js';
import { measureLossCost } from './measure-loss.js';
import { measureWeightCosts } from './measure-optimizer.js';
import type { LayerMeasurement, ModelMeasurements } from './model-measurements.js';
import type { OptimizerName } from './optimizer-state.js';

export interface MeasureModelOptions {
  /** Zoo name or path, for the report. */
  name: string;
  /** Tensor backend in use (tf.getBackend() or the selection's flag), for the report. */
  backend: string;
  optimizer: OptimizerName;
  /** The mini-batch the plan is for: times are measured at it and at about an eighth of it. */
  batchSize: number;
  /** Timed repetitions of every measurement (medians are kept). Default 5. */
  repeats?: number;
  /** Resident bytes of the runtime before the model was built; default: now, minus the model's weights. */
  runtimeBytes?: number;
}

/** The two batch sizes to measure at: the mini-batch, and the micro-batch of about 8 micro-batches. */
export function profiledBatchSizes(batchSize: number): [number, number] {
  const large = Math.max(2, Math.floor(batchSize));
  return [Math.max(1, Math.min(Math.floor(large / 8), large - 1)), large];
}

/**
 * Measures a sequential model on this machine: per-layer times with `profileLayers` (the same
 * profile the pipeline balancer uses) at two batch sizes, per-layer weight costs (optimizer update,
 * gradient accumulation, gradient copies), activation memory, the loss, FLOPs, and the share of a
 * core this process got meanwhile. Costs are CPU time (the work); the share turns work into wall
 * time at this load. The model's weights are not changed.
 */
export function measureModel(model: tf.LayersModel, options: MeasureModelOptions): ModelMeasurements {
  const started = performance.now();
  const layers = sequentialLayers(model);
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const numClasses = model.outputs[0]!.shape[model.outputs[0]!.shape.length - 1] as number;
  const outputKind = outputKindOf(model);
  const repeats = options.repeats ?? 5;
  const batchSizes = profiledBatchSizes(options.batchSize);
  const runtimeBytes = options.runtimeBytes ?? Math.max(0, process.memoryUsage().rss - model.countParams() * 4);

  const meter = new LoadMeter();
  const profiles: LayerProfile[][] = [];
  for (const batchSize of batchSizes) {
    profiles.push(profileLayers(layers, inputShape, { batchSize, repeats }));
    meter.sample();
  }
  const weightCosts = measureWeightCosts(layers, options.optimizer, { repeats });
  meter.sample();
  const loss = measureLossCost(numClasses, outputKind, batchSizes, repeats);
  meter.sample();
  const load = meter.finish();
  const memory = measureLayerMemory(layers, inputShape);

  const [small, large] = batchSizes;
  const firstWeighted = layers.findIndex((l) => l.trainableWeights.length > 0);
  const fit = (pick: (p: LayerProfile) => number, i: number) => fitLinear({ samples: small, ms: pick(profiles[0]![i]!) }, { samples: large, ms: pick(profiles[1]![i]!) });
  const measured: LayerMeasurement[] = layers.map((layer, i) => {
    const flops = layerFlops(layer);
    return {
      index: i,
      name: layer.name,
      className: layer.getClassName(),
      parameters: layer.countParams(),
      trainableParameters: layer.trainableWeights.reduce((n, w) => n + w.shape.reduce<number>((a, d) => a * (d ?? 1), 1), 0),
      outputValuesPerSample: profiles[1]![i]!.outputValuesPerSample,
      keptBytesPerSample: memory[i]!.keptBytesPerSample,
      sharedWithPreviousBytesPerSample: memory[i]!.sharedWithPreviousBytesPerSample,
      ...(flops ? { flops } : {}),
      forward: fit((p) => p.cpu.forwardMs, i),
      forwardBackward: fit((p) => p.cpu.forwardBackwardMs, i),
      weightGradientsOnly: fit((p) => p.cpu.weightGradientsOnlyMs, i),
      ...weightCosts[i]!,
      wallForwardMs: profiles[1]![i]!.forwardMs,
      wallForwardBackwardMs: i <= firstWeighted ? profiles[1]![i]!.weightGradientsOnlyMs : profiles[1]![i]!.forwardBackwardMs,
    };
  });
  return {
    model: options.name,
    backend: options.backend,
    optimizer: options.optimizer,
    inputShape,
    numClasses,
    outputKind,
    parameters: model.countParams(),
    trainableParameters: measured.reduce((n, l) => n + l.trainableParameters, 0),
    layers: measured,
    loss,
    profiledBatchSizes: batchSizes,
    runtimeBytes,
    load,
    measuredMs: performance.now() - started,
  };
}
