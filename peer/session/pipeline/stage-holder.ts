import * as tf from '@tensorflow/tfjs';
import type { ClusterJob } from '../../../coordinator/job/cluster-job.js';
import {
  parseStagePart,
  STAGE_MODEL_FILE,
  STAGE_OPTIMIZER_FILE,
  STAGE_PART_FILE,
  STAGE_PART_FORMAT,
  STAGE_WEIGHTS_FILE,
  type StagePartHeader,
  type WeightSpec,
} from '../../../coordinator/checkpoint/pipeline-checkpoint.js';
import type { TransferFile } from '../../../coordinator/protocol/file-transfer.js';
import type { StageModule } from '../../pipeline/partition/stage-module.js';
import { createOptimizer } from '../../trainer/optimizer.js';
import type { StageModelSource } from './stage-model-source.js';
import { concatBytes, utf8Bytes } from '../../../shared/encoding/bytes.js';

type LayerVariable = tf.layers.Layer['weights'][number];

/**
 * A peer's stage of the pipeline: its consecutive layers of the job's model, built on this peer from
 * the job's model source with only those layers' weights (the rest of the model is never built
 * here), an optimizer over those layers only, and the step the two belong to. Kept across membership
 * epochs while the peer keeps the same stage of the same split, so a pipeline that stops (pause, a
 * member joining) continues from memory.
 */
export class StageHolder {
  private moduleValue: StageModule;
  /** Whether the weights are still the initial ones (then a fresh start need not rebuild them). */
  private pristine = true;
  private optimizerValue: tf.Optimizer;
  /** Last step whose update is in this stage's weights (−1: nothing trustworthy yet). */
  committedStep = -1;

  private constructor(
    readonly runId: string,
    readonly balance: readonly number[],
    readonly stage: number,
    private readonly source: StageModelSource,
    private readonly job: ClusterJob,
    module: StageModule,
  ) {
    this.moduleValue = module;
    this.optimizerValue = createOptimizer(job);
  }

  /** Builds stage `stage` of `balance` with its initial weights (step 0). */
  static async create(runId: string, balance: readonly number[], stage: number, source: StageModelSource, job: ClusterJob): Promise<StageHolder> {
    return new StageHolder(runId, balance, stage, source, job, await source.build([...balance], stage));
  }

  get module(): StageModule {
    return this.moduleValue;
  }

  get stages(): number {
    return this.balance.length;
  }

  get optimizer(): tf.Optimizer {
    return this.optimizerValue;
  }

  /** Whether this holder is the stage `stage` of the split `balance` in run `runId`. */
  matches(runId: string, balance: readonly number[], stage: number): boolean {
    return this.runId === runId && this.stage === stage && this.balance.join(',') === balance.join(',');
  }

  /** The initial weights (rebuilt: the same seeded values as the whole model's layers) and a fresh optimizer. */
  async resetFresh(): Promise<void> {
    if (!this.pristine) {
      const fresh = await this.source.build([...this.balance], this.stage);
      this.disposeWeights();
      this.moduleValue = fresh;
    }
    this.replaceOptimizer();
    this.pristine = true;
    this.committedStep = 0;
  }

  /** Called before the weights change (a training step, a checkpoint part written into them). */
  markTouched(): void {
    this.pristine = false;
  }

  /** This stage's part of a checkpoint (stage 0 adds the whole model's topology). */
  async exportPart(step: number): Promise<TransferFile[]> {
    const trainable = this.module.layers.flatMap((layer) => layer.trainableWeights);
    const nonTrainable = this.module.layers.flatMap((layer) => layer.nonTrainableWeights);
    const slots = await this.optimizerValue.getWeights();
    try {
      const header: StagePartHeader = {
        format: STAGE_PART_FORMAT,
        stage: this.stage,
        stages: this.stages,
        balance: [...this.balance],
        step,
        optimizer: this.job.optimizer,
        learningRate: this.job.learningRate,
        trainable: trainable.map(specOf),
        nonTrainable: nonTrainable.map(specOf),
        slots: slots.map((slot) => ({ name: slot.name, shape: [...slot.tensor.shape], dtype: slot.tensor.dtype === 'int32' ? 'int32' : 'float32' })),
      };
      const files: TransferFile[] = [
        { name: STAGE_PART_FILE, data: utf8Bytes(JSON.stringify(header)) },
        { name: STAGE_WEIGHTS_FILE, data: concatBytes([...trainable, ...nonTrainable].map((weight) => bytesOfTensor(weight.read()))) },
        { name: STAGE_OPTIMIZER_FILE, data: concatBytes(slots.map((slot) => bytesOfTensor(slot.tensor))) },
      ];
      if (this.stage === 0) files.push({ name: STAGE_MODEL_FILE, data: modelTopology(this.source.topology) });
      return files;
    } finally {
      // getWeights hands out a fresh iteration-count scalar each time; the rest are the live slots.
      slots.filter((slot) => slot.name === 'iter').forEach((slot) => slot.tensor.dispose());
    }
  }

  /** Replaces this stage's weights and optimizer with a checkpoint part; errors say what does not fit. */
  async importPart(files: readonly TransferFile[], step: number): Promise<void> {
    const part = parseStagePart(files, 'the checkpoint part from the coordinator');
    const { header } = part;
    if (header.stage !== this.stage || header.balance.join(',') !== this.balance.join(',')) {
      throw new Error(`received the checkpoint part of stage ${header.stage} with balance [${header.balance.join(', ')}], this peer runs stage ${this.stage} of [${this.balance.join(', ')}]`);
    }
    const trainable = this.module.layers.flatMap((layer) => layer.trainableWeights);
    const nonTrainable = this.module.layers.flatMap((layer) => layer.nonTrainableWeights);
    const values = decode(part.weights, [...header.trainable, ...header.nonTrainable]);
    const variables = [...trainable, ...nonTrainable];
    if (values.length !== variables.length) {
      tf.dispose(values);
      throw new Error(`the checkpoint part holds ${values.length} weights, stage ${this.stage} has ${variables.length}`);
    }
    try {
      variables.forEach((variable, i) => {
        if (variable.shape.join(',') !== values[i]!.shape.join(',')) throw new Error(`weight ${variable.name} has shape [${variable.shape.join(', ')}], the checkpoint [${values[i]!.shape.join(', ')}]`);
      });
      this.markTouched();
      variables.forEach((variable, i) => variable.write(values[i]!));
    } finally {
      tf.dispose(values);
    }
    const slots = decode(part.optimizer, header.slots);
    this.replaceOptimizer();
    // setWeights keeps the tensors as its slot variables' initial values (copies): free ours after.
    try {
      await this.optimizerValue.setWeights(header.slots.map((spec, i) => ({ name: spec.name, tensor: slots[i]! })));
    } finally {
      tf.dispose(slots);
    }
    this.committedStep = step;
  }

  /** Bytes of this stage's weights and optimizer slots (what a stage holds, for the docs and tests). */
  async heldBytes(): Promise<{ weights: number; slots: number }> {
    const weights = this.module.layers.flatMap((layer) => layer.weights).reduce((n, w) => n + w.read().size * 4, 0);
    const slots = await this.optimizerValue.getWeights();
    const slotBytes = slots.reduce((n, slot) => n + slot.tensor.size * 4, 0);
    slots.filter((slot) => slot.name === 'iter').forEach((slot) => slot.tensor.dispose());
    return { weights, slots: slotBytes };
  }

  dispose(): void {
    this.optimizerValue.dispose();
    this.disposeWeights();
  }

  private disposeWeights(): void {
    for (const layer of this.moduleValue.layers) for (const weight of layer.weights) weight.dispose();
  }

  private replaceOptimizer(): void {
    this.optimizerValue.dispose();
    this.optimizerValue = createOptimizer(this.job);
  }
}

function specOf(weight: LayerVariable): WeightSpec {
  return { name: weight.originalName ?? weight.name, shape: [...weight.shape] as number[], dtype: weight.dtype === 'int32' ? 'int32' : 'float32' };
}

function bytesOfTensor(tensor: tf.Tensor): Uint8Array {
  const values = tensor.dataSync() as Float32Array | Int32Array;
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

function decode(data: Uint8Array, specs: readonly WeightSpec[]): tf.Tensor[] {
  const tensors: tf.Tensor[] = [];
  let offset = 0;
  for (const spec of specs) {
    const bytes = spec.shape.reduce((a, b) => a * b, 1) * 4;
    const copy = data.slice(offset, offset + bytes).buffer;
    tensors.push(tf.tensor(spec.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy), spec.shape, spec.dtype));
    offset += bytes;
  }
  return tensors;
}

/**
 * model.json of the whole model with its topology only: stage 0 never holds the other stages'
 * weights, so the coordinator writes the weights manifest from the stages' own specs when it joins
 * the parts (assembleStageParts).
 */
function modelTopology(topology: object): Uint8Array {
  return utf8Bytes(JSON.stringify({ modelTopology: topology, weightsManifest: [], format: 'layers-model', generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`, convertedBy: null }));
}
