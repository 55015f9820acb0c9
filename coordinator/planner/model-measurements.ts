import type { OutputKind } from '../../peer/trainer/loss.js';
import type { LayerFlops } from './layer-flops.js';
import type { LinearCost } from './linear-cost.js';
import type { CrossingCost } from './measure-crossing.js';
import type { MeasuredLoad } from './machine-load.js';
import type { OptimizerName } from './optimizer-state.js';

/** Everything the planner knows about one layer: counted from its shapes, or measured on this machine. */
export interface LayerMeasurement {
  index: number;
  name: string;
  className: string;
  parameters: number;
  /** Parameters the optimizer updates (gradients and optimizer state exist for these only). */
  trainableParameters: number;
  outputValuesPerSample: number;
  /** Bytes kept for the backward pass per sample (see measure-layer-memory.ts). */
  keptBytesPerSample: number;
  sharedWithPreviousBytesPerSample: number;
  /** Undefined for layer classes whose arithmetic we do not count. */
  flops?: LayerFlops;
  /**
   * Work: CPU milliseconds of the measuring process (as a line through two batch sizes), what the
   * layer costs whatever the load; wall time = work ÷ the share of a core the process gets.
   */
  forward: LinearCost;
  forwardBackward: LinearCost;
  weightGradientsOnly: LinearCost;
  /** Per step, CPU milliseconds (see WeightCosts). */
  updateMs: number;
  accumulateMs: number;
  copyMs: number;
  /** Wall-clock medians at the larger profiled batch, under the load of `ModelMeasurements.load` (for the report). */
  wallForwardMs: number;
  wallForwardBackwardMs: number;
}

/**
 * A model measured on this machine's tensor backend: plain data (JSON-safe), measured once and then
 * planned against any cluster, e.g. by the dashboard each time peers come or go.
 */
export interface ModelMeasurements {
  model: string;
  backend: string;
  optimizer: OptimizerName;
  inputShape: number[];
  numClasses: number;
  outputKind: OutputKind;
  parameters: number;
  trainableParameters: number;
  layers: LayerMeasurement[];
  /** Forward + backward of the loss on the model's output (CPU milliseconds). */
  loss: LinearCost;
  /** The two batch sizes every time was measured at (costs are the line through them). */
  profiledBatchSizes: [number, number];
  /**
   * CPU ms a training step (data parallel, one peer) spends beyond its layers' passes, loss and update,
   * and a pipeline stage per micro-batch (measure-machinery.ts); absent when not measured (measureModel
   * alone leaves the model untouched and does not measure them).
   */
  stepOverhead?: LinearCost;
  stageOverheadMsPerMicroBatch?: number;
  /** CPU ms of moving one micro-batch's tensor between two stages over the stage links (measure-crossing.ts); absent when not measured. */
  crossing?: CrossingCost;
  /** CPU ms the first stage spends assembling a mini-batch of MNIST-like images (measure-batch-assembly.ts); absent when not measured. */
  batchAssembly?: LinearCost;
  /** Resident memory of a process with the tensor engine loaded, before the model: what any peer pays. */
  runtimeBytes: number;
  load: MeasuredLoad;
  measuredMs: number;
}
