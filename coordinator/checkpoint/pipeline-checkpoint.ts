import { MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_WEIGHTS_FILE, WEIGHTS_FILE } from './checkpoint-layout.js';
import type { TransferFile } from '../protocol/file-transfer.js';
import { concatBytes, parseJsonBytes, utf8Bytes } from '../../shared/encoding/bytes.js';

/**
 * A pipeline checkpoint is written as ONE ordinary checkpoint: the whole model in the standard
 * LayersModel layout (stock `tf.loadLayersModel` loads it) and every stage's optimizer slots in one
 * file, with a table saying which bytes belong to which stage. Each stage uploads its *part* (its
 * layers' weights and its optimizer's slots); `assembleStageParts` joins the parts of one step and
 * `splitIntoStageParts` cuts a stored checkpoint back into parts to restore each stage from.
 *
 * Model weights are laid out as `LayersModel.save` lays them out: every layer's trainable weights
 * in layer order, then every layer's non-trainable weights. Stages hold consecutive layers, so the
 * model file is the stages' trainable parts in stage order followed by their non-trainable parts.
 */
export const STAGE_PART_FILE = 'stage.json';
export const STAGE_WEIGHTS_FILE = 'weights.bin';
export const STAGE_OPTIMIZER_FILE = 'optimizer.bin';
/** Stage 0 also uploads the model's topology (model.json naming every weight of the whole model). */
export const STAGE_MODEL_FILE = 'model.json';
export const STAGE_PART_FORMAT = 'ringpipe-stage-part/1';
export const PIPELINE_OPTIMIZER_FORMAT = 'ringpipe-pipeline-optimizer/1';

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
}

/** `stage.json`: what one stage's part holds, in the order of its binary files. */
export interface StagePartHeader {
  format: typeof STAGE_PART_FORMAT;
  stage: number;
  stages: number;
  balance: number[];
  step: number;
  optimizer: string;
  learningRate: number;
  /** In `weights.bin`: trainable weights first, then non-trainable ones. */
  trainable: WeightSpec[];
  nonTrainable: WeightSpec[];
  /** In `optimizer.bin`: the stage optimizer's slots, in its getWeights() order. */
  slots: WeightSpec[];
}

/** `optimizer/optimizer.json` of a pipeline checkpoint. */
export interface PipelineOptimizerFile {
  format: typeof PIPELINE_OPTIMIZER_FORMAT;
  optimizer: string;
  learningRate: number;
  weightsFile: string;
  balance: number[];
  stages: Pick<StagePartHeader, 'stage' | 'trainable' | 'nonTrainable' | 'slots'>[];
  /** Every slot, stage after stage (the layout of optimizer/weights.bin). */
  weights: WeightSpec[];
}

export function bytesOf(specs: readonly WeightSpec[]): number {
  return specs.reduce((total, spec) => total + spec.shape.reduce((a, b) => a * b, 1) * 4, 0);
}

export function parseStagePart(files: readonly TransferFile[], from: string): { header: StagePartHeader; weights: Uint8Array; optimizer: Uint8Array; model?: Uint8Array } {
  const byName = new Map(files.map((file) => [file.name, file.data]));
  const need = (name: string): Uint8Array => {
    const data = byName.get(name);
    if (!data) throw new Error(`${from}: the stage part has no ${name}`);
    return data;
  };
  const header = parseJsonBytes(need(STAGE_PART_FILE), `${from}: ${STAGE_PART_FILE}`) as StagePartHeader;
  if (header.format !== STAGE_PART_FORMAT) throw new Error(`${from}: ${STAGE_PART_FILE} has format ${JSON.stringify(header.format)}, expected ${STAGE_PART_FORMAT}`);
  const weights = need(STAGE_WEIGHTS_FILE);
  const optimizer = need(STAGE_OPTIMIZER_FILE);
  const wantWeights = bytesOf(header.trainable) + bytesOf(header.nonTrainable);
  if (weights.byteLength !== wantWeights) throw new Error(`${from}: ${STAGE_WEIGHTS_FILE} has ${weights.byteLength} bytes, its specs describe ${wantWeights}`);
  if (optimizer.byteLength !== bytesOf(header.slots)) throw new Error(`${from}: ${STAGE_OPTIMIZER_FILE} has ${optimizer.byteLength} bytes, its specs describe ${bytesOf(header.slots)}`);
  const model = byName.get(STAGE_MODEL_FILE);
  return { header, weights, optimizer, ...(model ? { model } : {}) };
}

/** Joins the K parts of one step (any order) into the four files of an ordinary checkpoint. */
export function assembleStageParts(parts: readonly (readonly TransferFile[])[]): TransferFile[] {
  const parsed = parts.map((files, i) => parseStagePart(files, `part ${i}`)).sort((a, b) => a.header.stage - b.header.stage);
  const first = parsed[0];
  if (!first) throw new Error('no stage parts to assemble');
  const { stages, step, balance } = first.header;
  parsed.forEach((part, i) => {
    if (part.header.stage !== i || part.header.stages !== stages || part.header.step !== step || part.header.balance.join(',') !== balance.join(',')) {
      throw new Error(`stage parts do not fit together: part of stage ${part.header.stage} of ${part.header.stages} at step ${part.header.step}, expected stage ${i} of ${stages} at step ${step}`);
    }
  });
  if (parsed.length !== stages) throw new Error(`${parsed.length} stage parts for a pipeline of ${stages} stages`);
  if (!first.model) throw new Error(`stage 0's part has no ${STAGE_MODEL_FILE}`);
  const trainableBytes = parsed.map((part) => part.weights.subarray(0, bytesOf(part.header.trainable)));
  const nonTrainableBytes = parsed.map((part) => part.weights.subarray(bytesOf(part.header.trainable)));
  const modelWeights = concatBytes([...trainableBytes, ...nonTrainableBytes]);

  // The topology from stage 0 must describe exactly the weights the stages sent, in that order.
  const modelJson = parseJsonBytes(first.model, `stage 0's ${STAGE_MODEL_FILE}`) as { weightsManifest?: { paths: string[]; weights: WeightSpec[] }[] };
  const listed = (modelJson.weightsManifest ?? []).flatMap((group) => group.weights);
  const sent = [...parsed.flatMap((part) => part.header.trainable), ...parsed.flatMap((part) => part.header.nonTrainable)];
  const shapes = (specs: readonly WeightSpec[]) => specs.map((spec) => spec.shape.join('x')).join(',');
  let model = first.model;
  if (listed.length === 0 && sent.length > 0) {
    // Stage 0 holds only its own layers, so it sends the topology alone: each stage names and shapes
    // its weights (after the topology's layer names), in the order weights.bin is laid out.
    modelJson.weightsManifest = [{ paths: ['weights.bin'], weights: sent }];
    model = utf8Bytes(JSON.stringify(modelJson));
  } else if (shapes(listed) !== shapes(sent)) {
    throw new Error(`the stages' weights [${shapes(sent)}] do not match the model's [${shapes(listed)}]`);
  }

  const optimizerFile: PipelineOptimizerFile = {
    format: PIPELINE_OPTIMIZER_FORMAT,
    optimizer: first.header.optimizer,
    learningRate: first.header.learningRate,
    weightsFile: 'weights.bin',
    balance,
    stages: parsed.map(({ header }) => ({ stage: header.stage, trainable: header.trainable, nonTrainable: header.nonTrainable, slots: header.slots })),
    weights: parsed.flatMap((part) => part.header.slots),
  };
  return [
    { name: WEIGHTS_FILE, data: modelWeights },
    { name: MODEL_FILE, data: model },
    { name: OPTIMIZER_WEIGHTS_FILE, data: concatBytes(parsed.map((part) => part.optimizer)) },
    { name: OPTIMIZER_FILE, data: utf8Bytes(JSON.stringify(optimizerFile)) },
  ];
}

/**
 * Cuts a stored pipeline checkpoint into one part per stage (to restore each stage from). Throws,
 * saying what to do, when the checkpoint was written by another pipeline (another balance).
 */
export function splitIntoStageParts(files: readonly TransferFile[], step: number, balance: readonly number[]): TransferFile[][] {
  const byName = new Map(files.map((file) => [file.name, file.data]));
  const need = (name: string): Uint8Array => {
    const data = byName.get(name);
    if (!data) throw new Error(`the checkpoint has no ${name}`);
    return data;
  };
  const optimizerFile = parseJsonBytes(need(OPTIMIZER_FILE), OPTIMIZER_FILE) as PipelineOptimizerFile;
  if (optimizerFile.format !== PIPELINE_OPTIMIZER_FORMAT) {
    throw new Error(`the checkpoint of step ${step} was not written by a pipeline (${OPTIMIZER_FILE} has format ${JSON.stringify(optimizerFile.format)}); start over with --fresh`);
  }
  if (optimizerFile.balance.join(',') !== balance.join(',')) {
    throw new Error(
      `the checkpoint of step ${step} was written by a pipeline with balance [${optimizerFile.balance.join(', ')}], this job's is [${balance.join(', ')}]: ` +
        `set pipeline.stages and pipeline.balance to [${optimizerFile.balance.join(', ')}] to resume it, or start over with --fresh`,
    );
  }
  const weights = need(WEIGHTS_FILE);
  const slots = need(OPTIMIZER_WEIGHTS_FILE);
  const stages = optimizerFile.stages;
  const totalTrainable = stages.reduce((total, s) => total + bytesOf(s.trainable), 0);
  if (weights.byteLength !== totalTrainable + stages.reduce((total, s) => total + bytesOf(s.nonTrainable), 0)) throw new Error(`${WEIGHTS_FILE} does not match the stage table in ${OPTIMIZER_FILE}`);
  if (slots.byteLength !== bytesOf(optimizerFile.weights)) throw new Error(`${OPTIMIZER_WEIGHTS_FILE} does not match the stage table in ${OPTIMIZER_FILE}`);
  let trainableAt = 0;
  let nonTrainableAt = totalTrainable;
  let slotsAt = 0;
  return stages.map((entry) => {
    const t = bytesOf(entry.trainable);
    const n = bytesOf(entry.nonTrainable);
    const o = bytesOf(entry.slots);
    const header: StagePartHeader = {
      format: STAGE_PART_FORMAT,
      stage: entry.stage,
      stages: stages.length,
      balance: [...balance],
      step,
      optimizer: optimizerFile.optimizer,
      learningRate: optimizerFile.learningRate,
      trainable: entry.trainable,
      nonTrainable: entry.nonTrainable,
      slots: entry.slots,
    };
    const part: TransferFile[] = [
      { name: STAGE_PART_FILE, data: utf8Bytes(JSON.stringify(header)) },
      { name: STAGE_WEIGHTS_FILE, data: concatBytes([weights.subarray(trainableAt, trainableAt + t), weights.subarray(nonTrainableAt, nonTrainableAt + n)]) },
      { name: STAGE_OPTIMIZER_FILE, data: slots.slice(slotsAt, slotsAt + o) },
    ];
    trainableAt += t;
    nonTrainableAt += n;
    slotsAt += o;
    return part;
  });
}
