import * as tf from '@tensorflow/tfjs';
import type { ClusterJob } from '../../coordinator/job/cluster-job.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { createModel } from '../../shared/models/create-model.js';
import { outputKindOf } from '../trainer/loss.js';
import { createOptimizer } from '../trainer/optimizer.js';
import type { StepContext } from '../trainer/train-step.js';
import { describeLayout, sizeOf, type StateEntry, type StateLayout } from './state-layout.js';

/** What the model must take and give: one sample's shape and the number of classes. */
export interface DataShape {
  inputShape: number[];
  numClasses: number;
}

/**
 * A peer's model and optimizer, and the step they belong to. The state changes only by a whole
 * optimizer step (after the gradient exchange succeeded), so what it holds is always a committed
 * state: when an epoch fails mid-step, this is what the survivors roll back to — nothing to undo.
 */
export class TrainingState {
  /** The last step whose update is in the weights (0: initial weights; −1: no trustworthy state). */
  committedStep = -1;

  private constructor(
    readonly ctx: StepContext,
    readonly layout: StateLayout,
    private readonly initial: Float32Array,
  ) {}

  /** `data`: the shape of the job's samples (an in-memory image set gives its own). */
  static async create(job: ClusterJob, data: DataShape | ImageDataset): Promise<TrainingState> {
    const { inputShape, numClasses } = 'inputShape' in data ? data : { inputShape: [data.height, data.width, data.channels], numClasses: data.numClasses };
    const model = await createModel(job.model, { inputShape, numClasses, seed: job.seed });
    const optimizer = createOptimizer(job);
    const ctx: StepContext = { model, optimizer, inputShape, numClasses, outputKind: outputKindOf(model) };
    await primeOptimizer(ctx);
    const layout = describeLayout(await stateEntries(ctx));
    const initial = new Float32Array(layout.elements);
    await writeState(ctx, layout, initial);
    const state = new TrainingState(ctx, layout, initial);
    state.committedStep = 0;
    return state;
  }

  get model(): tf.LayersModel {
    return this.ctx.model;
  }

  get optimizer(): tf.Optimizer {
    return this.ctx.optimizer;
  }

  /** Back to the seeded initial weights and an empty optimizer (a fresh run). */
  async resetToInitial(): Promise<void> {
    await this.importFlat(this.initial, 0);
  }

  /** Writes the whole state into `into` (layout order, every value as float32). */
  async exportFlat(into: Float32Array): Promise<void> {
    await writeState(this.ctx, this.layout, into);
  }

  /** Replaces the whole state with `flat` (as broadcast by the epoch's state root) at `step`. */
  async importFlat(flat: Float32Array, step: number): Promise<void> {
    if (flat.length !== this.layout.elements) throw new Error(`training state has ${this.layout.elements} elements, received ${flat.length}`);
    let offset = 0;
    const tensors = this.layout.entries.map((entry) => {
      const values = flat.subarray(offset, offset + entry.size);
      offset += entry.size;
      return tf.tensor(entry.dtype === 'int32' ? Int32Array.from(values) : values.slice(), entry.shape, entry.dtype);
    });
    await this.setTensors(tensors, step);
  }

  /** Replaces the state with tensors in layout order (from a checkpoint); takes ownership of them. */
  async setTensors(tensors: tf.Tensor[], step: number): Promise<void> {
    const { entries } = this.layout;
    try {
      if (tensors.length !== entries.length) throw new Error(`the state has ${entries.length} tensors, got ${tensors.length}`);
      tensors.forEach((tensor, i) => {
        const entry = entries[i]!;
        if (tensor.shape.join(',') !== entry.shape.join(',')) {
          throw new Error(`${entry.owner} tensor ${i} (${entry.name}) has shape [${entry.shape.join(', ')}], got [${tensor.shape.join(', ')}]`);
        }
      });
      const modelCount = entries.filter((e) => e.owner === 'model').length;
      this.ctx.model.setWeights(tensors.slice(0, modelCount));
      const previous = await this.ctx.optimizer.getWeights();
      await this.ctx.optimizer.setWeights(entries.slice(modelCount).map((entry, i) => ({ name: entry.name, tensor: tensors[modelCount + i]! })));
      // setWeights makes new slot variables; the old ones would otherwise leak on every rollback.
      tf.dispose(previous.map((p) => p.tensor));
      this.committedStep = step;
    } finally {
      // Model weights were copied by setWeights; optimizer slots now hold their own references.
      tf.dispose(tensors);
    }
  }

  dispose(): void {
    this.ctx.model.dispose();
    this.ctx.optimizer.dispose();
  }
}

/**
 * Optimizers create their slots (Adam's moments…) lazily on the first update, so a fresh optimizer
 * has another layout than a trained one. One update with zero gradients creates them; resetting them
 * to zero (all of ours start at zero) and the weights to what they were leaves a fresh state.
 */
async function primeOptimizer(ctx: StepContext): Promise<void> {
  const before = ctx.model.getWeights().map((w) => w.clone());
  const zeros: tf.NamedTensorMap = {};
  for (const weight of ctx.model.trainableWeights) {
    const variable = weight.read() as tf.Variable;
    zeros[variable.name] = tf.zerosLike(variable);
  }
  ctx.optimizer.applyGradients(zeros);
  tf.dispose(zeros);
  ctx.model.setWeights(before);
  tf.dispose(before);
  const slots = await ctx.optimizer.getWeights();
  const previous = slots.map((s) => s.tensor);
  await ctx.optimizer.setWeights(slots.map((slot) => ({ name: slot.name, tensor: tf.zerosLike(slot.tensor) })));
  tf.dispose(previous);
}

async function stateEntries(ctx: StepContext): Promise<StateEntry[]> {
  const entries: StateEntry[] = ctx.model.weights.map((weight) => ({
    owner: 'model',
    name: weight.name,
    shape: [...weight.shape] as number[],
    dtype: weight.dtype === 'int32' ? 'int32' : 'float32',
    size: sizeOf(weight.shape as number[]),
  }));
  const slots = await ctx.optimizer.getWeights();
  for (const slot of slots) {
    entries.push({ owner: 'optimizer', name: slot.name, shape: [...slot.tensor.shape], dtype: slot.tensor.dtype === 'int32' ? 'int32' : 'float32', size: slot.tensor.size });
  }
  // getWeights hands out a fresh iteration-count scalar each time; the rest are the live slots.
  slots.filter((slot) => slot.name === 'iter').forEach((slot) => slot.tensor.dispose());
  return entries;
}

async function writeState(ctx: StepContext, layout: StateLayout, into: Float32Array): Promise<void> {
  if (into.length !== layout.elements) throw new Error(`state buffer has ${into.length} elements, the layout needs ${layout.elements}`);
  const slots = await ctx.optimizer.getWeights();
  const tensors = [...ctx.model.getWeights(), ...slots.map((slot) => slot.tensor)];
  let offset = 0;
  try {
    for (const tensor of tensors) {
      into.set(tensor.dataSync() as Float32Array | Int32Array, offset);
      offset += tensor.size;
    }
  } finally {
    slots.filter((slot) => slot.name === 'iter').forEach((slot) => slot.tensor.dispose());
  }
  if (offset !== layout.elements) throw new Error(`the model and optimizer now hold ${offset} values, the layout says ${layout.elements}`);
}
