import * as tf from '@tensorflow/tfjs';
import type { TransferFile } from '../../coordinator/protocol/file-transfer.js';
import { MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_WEIGHTS_FILE, WEIGHTS_FILE } from '../../coordinator/checkpoint/checkpoint-layout.js';
import { sizeOf } from './state-layout.js';
import type { TrainingState } from './training-state.js';
import { concatBytes, parseJsonBytes, utf8Bytes } from '../../shared/encoding/bytes.js';

/**
 * The training state as checkpoint files: the model in the standard TensorFlow.js LayersModel
 * layout (model.json + weights.bin, exactly what `model.save` produces, so stock
 * `tf.loadLayersModel` reads it) and the optimizer slots in the same weights format.
 */
interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
}

export async function exportCheckpointFiles(state: TrainingState, optimizerName: string, learningRate: number): Promise<TransferFile[]> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await state.model.save({
    async save(captured: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      artifacts = captured;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
  if (!artifacts || artifacts.modelTopology instanceof ArrayBuffer || !artifacts.modelTopology) throw new Error('the model did not produce a JSON topology');
  const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [basename(WEIGHTS_FILE)], weights: artifacts.weightSpecs ?? [] }],
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
  };

  const slots = await state.optimizer.getWeights();
  const slotSpecs: WeightSpec[] = [];
  const slotBytes: Uint8Array[] = [];
  try {
    for (const slot of slots) {
      const values = slot.tensor.dataSync() as Float32Array | Int32Array;
      slotSpecs.push({ name: slot.name, shape: [...slot.tensor.shape], dtype: slot.tensor.dtype === 'int32' ? 'int32' : 'float32' });
      slotBytes.push(new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)));
    }
  } finally {
    slots.filter((slot) => slot.name === 'iter').forEach((slot) => slot.tensor.dispose());
  }
  const optimizerJson = { format: 'ringpipe-optimizer/1', optimizer: optimizerName, learningRate, weightsFile: basename(OPTIMIZER_WEIGHTS_FILE), weights: slotSpecs };
  return [
    { name: WEIGHTS_FILE, data: new Uint8Array(weightData) },
    { name: MODEL_FILE, data: utf8Bytes(JSON.stringify(modelJson)) },
    { name: OPTIMIZER_WEIGHTS_FILE, data: concatBytes(slotBytes) },
    { name: OPTIMIZER_FILE, data: utf8Bytes(JSON.stringify(optimizerJson)) },
  ];
}

/** Loads checkpoint files into the state; errors say which file does not fit this job's model. */
export async function importCheckpointFiles(state: TrainingState, files: readonly TransferFile[], step: number): Promise<void> {
  const byName = new Map(files.map((file) => [file.name, file.data]));
  const need = (name: string): Uint8Array => {
    const data = byName.get(name);
    if (!data) throw new Error(`the checkpoint has no ${name}`);
    return data;
  };
  const modelJson = parseJsonBytes(need(MODEL_FILE), MODEL_FILE) as tf.io.ModelJSON;
  const modelSpecs = (modelJson.weightsManifest ?? []).flatMap((group) => group.weights) as WeightSpec[];
  const optimizerJson = parseJsonBytes(need(OPTIMIZER_FILE), OPTIMIZER_FILE) as { weights?: WeightSpec[] };
  const tensors = [...decodeWeights(need(WEIGHTS_FILE), modelSpecs, WEIGHTS_FILE), ...decodeWeights(need(OPTIMIZER_WEIGHTS_FILE), optimizerJson.weights ?? [], OPTIMIZER_WEIGHTS_FILE)];
  try {
    await state.setTensors(tensors, step);
  } catch (error) {
    throw new Error(`the checkpoint does not fit this job's model and optimizer: ${(error as Error).message}`, { cause: error });
  }
}

/** Splits a weights file by its specs, in order (names may differ between processes). */
function decodeWeights(data: Uint8Array, specs: readonly WeightSpec[], file: string): tf.Tensor[] {
  const tensors: tf.Tensor[] = [];
  let offset = 0;
  for (const spec of specs) {
    if (spec.dtype !== 'float32' && spec.dtype !== 'int32') {
      tf.dispose(tensors);
      throw new Error(`${file}: weight ${spec.name} has dtype ${String(spec.dtype)}; only float32 and int32 are supported`);
    }
    const bytes = sizeOf(spec.shape) * 4;
    if (offset + bytes > data.byteLength) {
      tf.dispose(tensors);
      throw new Error(`${file} is ${data.byteLength} bytes, too short for weight ${spec.name}`);
    }
    const copy = data.slice(offset, offset + bytes).buffer;
    tensors.push(tf.tensor(spec.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy), spec.shape, spec.dtype));
    offset += bytes;
  }
  if (offset !== data.byteLength) {
    tf.dispose(tensors);
    throw new Error(`${file} is ${data.byteLength} bytes but its specs describe ${offset}`);
  }
  return tensors;
}

function basename(file: string): string {
  return file.slice(file.lastIndexOf('/') + 1);
}
