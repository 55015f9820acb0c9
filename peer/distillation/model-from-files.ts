import * as tf from '@tensorflow/tfjs';
import type { TransferFile } from '../../coordinator/protocol/file-transfer.js';
import { MODEL_JSON_NAME, WEIGHTS_NAME } from '../../coordinator/distillation/model-files.js';
import { layersModelJson } from '../../shared/models/file-io.js';

/**
 * LayersModels to and from the two in-memory files the coordinator ships (`model.json`,
 * `weights.bin`), in the same layout `model.save('file://…')` writes, so what a peer uploads can be
 * written to disk as is and loaded by stock TensorFlow.js.
 */
export async function modelFromFiles(files: readonly TransferFile[], source: string): Promise<tf.LayersModel> {
  const json = files.find((file) => file.name === MODEL_JSON_NAME);
  const weights = files.find((file) => file.name === WEIGHTS_NAME);
  if (!json || !weights) throw new Error(`${source}: expected ${MODEL_JSON_NAME} and ${WEIGHTS_NAME}, got ${files.map((f) => f.name).join(', ') || 'nothing'}`);
  const parsed = JSON.parse(new TextDecoder().decode(json.data)) as tf.io.ModelJSON;
  const weightSpecs = parsed.weightsManifest.flatMap((group) => group.weights);
  const weightData = weights.data.buffer.slice(weights.data.byteOffset, weights.data.byteOffset + weights.data.byteLength) as ArrayBuffer;
  try {
    return await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: parsed.modelTopology, weightSpecs, weightData }));
  } catch (error) {
    throw new Error(`${source}: cannot build the model: ${(error as Error).message}`);
  }
}

export async function modelToFiles(model: tf.LayersModel): Promise<TransferFile[]> {
  let files: TransferFile[] = [];
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const { modelJson, weightData } = layersModelJson(artifacts, WEIGHTS_NAME);
      files = [
        { name: MODEL_JSON_NAME, data: new TextEncoder().encode(JSON.stringify(modelJson)) },
        { name: WEIGHTS_NAME, data: new Uint8Array(weightData) },
      ];
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weightData.byteLength } };
    }),
  );
  return files;
}
