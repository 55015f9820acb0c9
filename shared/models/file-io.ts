import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

/**
 * Saving and loading TensorFlow.js LayersModels on the local file system in the standard layout
 * (`model.json` + `weights.bin`, the same files `@tensorflow/tfjs-node`'s `file://` handler writes).
 * Needed because the plain `@tensorflow/tfjs` package has no file-system handler in Node.
 */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
const FILE_SCHEME = 'file://';

/** Writes `data` to `file` so that a crash leaves either the old file or the new one, never a mix. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}

/**
 * The model.json of saved `artifacts` whose weights are one file named `weightsPath`, and those
 * weights joined into one buffer (the standard layout; training config and metadata not included).
 */
export function layersModelJson(artifacts: tf.io.ModelArtifacts, weightsPath: string): { modelJson: tf.io.ModelJSON; weightData: ArrayBuffer } {
  const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as object,
    weightsManifest: [{ paths: [weightsPath], weights: artifacts.weightSpecs ?? [] }],
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
  };
  return { modelJson, weightData };
}

export function fileSaveHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('saving a binary (GraphDef) topology is not supported; ringpipe saves LayersModels only');
      }
      await mkdir(dir, { recursive: true });
      const { modelJson, weightData } = layersModelJson(artifacts, WEIGHTS_BIN);
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      // Weights first: model.json appearing last means a reader never sees topology without weights.
      await writeFileAtomic(path.join(dir, WEIGHTS_BIN), new Uint8Array(weightData));
      await writeFileAtomic(path.join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs).length,
          weightDataBytes: weightData.byteLength,
        },
      };
    },
  };
}

/** Accepts the path of a model.json or of the folder holding one. */
export async function resolveModelJson(location: string): Promise<string> {
  const target = location.startsWith(FILE_SCHEME) ? location.slice(FILE_SCHEME.length) : location;
  let info;
  try {
    info = await stat(target);
  } catch {
    throw new Error(`model not found at ${target}: give the path of a TensorFlow.js model.json (or its folder)`);
  }
  return info.isDirectory() ? path.join(target, MODEL_JSON) : target;
}

export function fileLoadHandler(modelJsonPath: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(await readFile(modelJsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (err) {
        throw new Error(`${modelJsonPath} is not a readable TensorFlow.js model.json: ${(err as Error).message}`);
      }
      if (!modelJson.modelTopology) throw new Error(`${modelJsonPath} has no modelTopology: is it a TensorFlow.js LayersModel?`);
      const dir = path.dirname(modelJsonPath);
      const buffers: Uint8Array[] = [];
      const weightSpecs: tf.io.WeightsManifestEntry[] = [];
      for (const group of modelJson.weightsManifest ?? []) {
        for (const file of group.paths) {
          try {
            buffers.push(await readFile(path.join(dir, file)));
          } catch {
            throw new Error(`weight file ${path.join(dir, file)} named by ${modelJsonPath} is missing`);
          }
        }
        weightSpecs.push(...group.weights);
      }
      const total = buffers.reduce((n, b) => n + b.byteLength, 0);
      const weightData = new Uint8Array(total);
      let offset = 0;
      for (const b of buffers) {
        weightData.set(b, offset);
        offset += b.byteLength;
      }
      return {
        modelTopology: modelJson.modelTopology,
        format: modelJson.format,
        generatedBy: modelJson.generatedBy,
        convertedBy: modelJson.convertedBy,
        trainingConfig: modelJson.trainingConfig,
        userDefinedMetadata: modelJson.userDefinedMetadata,
        weightSpecs,
        weightData: weightData.buffer,
      };
    },
  };
}

let routerRegistered = false;

/**
 * Lets `tf.loadLayersModel('file://…')` and `model.save('file://…')` work with plain @tensorflow/tfjs.
 * Skipped when a `file://` handler already exists (tfjs-node registers its own).
 */
export function registerFileRouter(): void {
  if (routerRegistered || tf.io.getSaveHandlers(`${FILE_SCHEME}/probe`).length > 0) return;
  // tfjs routers return null for URLs they do not handle, though its typings say IOHandler.
  const saveRouter = (url: string | string[]) =>
    typeof url === 'string' && url.startsWith(FILE_SCHEME) ? fileSaveHandler(url.slice(FILE_SCHEME.length)) : null;
  const loadRouter = (url: string | string[]) => {
    if (typeof url !== 'string' || !url.startsWith(FILE_SCHEME)) return null;
    const target = url.slice(FILE_SCHEME.length);
    return fileLoadHandler(target.endsWith('.json') ? target : path.join(target, MODEL_JSON));
  };
  tf.io.registerSaveRouter(saveRouter as Parameters<typeof tf.io.registerSaveRouter>[0]);
  tf.io.registerLoadRouter(loadRouter as Parameters<typeof tf.io.registerLoadRouter>[0]);
  routerRegistered = true;
}

export async function saveModel(model: tf.LayersModel, dir: string): Promise<string> {
  await model.save(fileSaveHandler(dir));
  return path.join(dir, MODEL_JSON);
}

export async function loadModel(location: string): Promise<tf.LayersModel> {
  const modelJson = await resolveModelJson(location);
  return tf.loadLayersModel(fileLoadHandler(modelJson));
}

