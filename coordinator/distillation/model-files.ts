import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { TransferFile } from '../protocol/file-transfer.js';
import { concatBytes } from '../../shared/encoding/bytes.js';

/**
 * A TensorFlow.js LayersModel as the two files it is saved as (`model.json`, `weights.bin`), held
 * in memory so the coordinator can ship it to peers without either side needing a shared disk.
 * Everything here is plain JSON and bytes: the coordinator never has to load a tensor backend.
 */
export const MODEL_JSON_NAME = 'model.json';
export const WEIGHTS_NAME = 'weights.bin';

export interface ModelFiles {
  /** Where it came from, for messages. */
  source: string;
  files: TransferFile[];
  /** Set when a softmax at the output was removed so the model yields logits (what was done). */
  strippedSoftmax?: string;
}

interface ModelJson {
  modelTopology?: unknown;
  weightsManifest?: { paths: string[]; weights: unknown[] }[];
  [key: string]: unknown;
}

/**
 * Finds the model.json a user meant: a model.json file, a folder holding one, a checkpoint of this
 * cluster (`…/step-00000200`, whose model is in `model/`), or a run folder (its newest checkpoint).
 */
export async function locateModelJson(location: string): Promise<string> {
  const target = location.startsWith('file://') ? location.slice('file://'.length) : location;
  const info = await stat(target).catch(() => undefined);
  if (!info) throw new Error(`no model at ${target}: give a TensorFlow.js model.json, its folder, a checkpoint folder or a run folder`);
  if (!info.isDirectory()) return target;
  for (const candidate of [path.join(target, MODEL_JSON_NAME), path.join(target, 'model', MODEL_JSON_NAME)]) {
    if (await stat(candidate).catch(() => undefined)) return candidate;
  }
  const checkpoints = path.join(target, 'checkpoints');
  const steps = (await readdir(checkpoints).catch(() => [] as string[])).filter((name) => /^step-\d+$/.test(name)).sort();
  const newest = steps.at(-1);
  if (newest) return path.join(checkpoints, newest, 'model', MODEL_JSON_NAME);
  throw new Error(`${target} holds no model.json, no model/model.json and no checkpoints/step-*: give a TensorFlow.js model (or a checkpoint / run folder of this cluster)`);
}

/** Reads a saved model into the two-file form (weights concatenated into one weights.bin). */
export async function readModelFiles(location: string): Promise<ModelFiles> {
  const jsonPath = await locateModelJson(location);
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8')) as ModelJson;
  } catch (error) {
    throw new Error(`${jsonPath} is not a readable TensorFlow.js model.json: ${(error as Error).message}`);
  }
  if (!json.modelTopology) throw new Error(`${jsonPath} has no modelTopology: only TensorFlow.js LayersModels can be distilled`);
  const dir = path.dirname(jsonPath);
  const parts: Uint8Array[] = [];
  const specs: unknown[] = [];
  for (const group of json.weightsManifest ?? []) {
    for (const file of group.paths) {
      const data = await readFile(path.join(dir, file)).catch(() => {
        throw new Error(`weight file ${path.join(dir, file)} named by ${jsonPath} is missing`);
      });
      parts.push(data);
    }
    specs.push(...group.weights);
  }
  const weights = concatBytes(parts);
  const normalized: ModelJson = { ...json, weightsManifest: [{ paths: [WEIGHTS_NAME], weights: specs }] };
  return logitsModel({ source: jsonPath, files: [jsonFile(normalized), { name: WEIGHTS_NAME, data: weights }] });
}

/** The model.json of a two-file model, parsed. */
export function modelJsonOf(model: Pick<ModelFiles, 'files' | 'source'>): ModelJson {
  const file = model.files.find((f) => f.name === MODEL_JSON_NAME);
  if (!file) throw new Error(`${model.source}: no ${MODEL_JSON_NAME} among its files`);
  return JSON.parse(new TextDecoder().decode(file.data)) as ModelJson;
}

/** Bytes the model takes on disk (model.json + weights). */
export function sizeOnDisk(model: Pick<ModelFiles, 'files'>): number {
  return model.files.reduce((sum, file) => sum + file.data.byteLength, 0);
}

/** Parameters, counted from the weight specs (no backend needed). */
export function parameterCount(model: Pick<ModelFiles, 'files' | 'source'>): number {
  const json = modelJsonOf(model);
  let count = 0;
  for (const group of json.weightsManifest ?? []) {
    for (const spec of group.weights as { shape: number[] }[]) count += spec.shape.reduce((a, b) => a * b, 1);
  }
  return count;
}

interface LayerJson {
  class_name: string;
  config: { name?: string; activation?: string; [key: string]: unknown };
  inbound_nodes?: unknown[];
  name?: string;
}

interface TopologyJson {
  class_name: string;
  config: { layers?: LayerJson[]; output_layers?: unknown[]; [key: string]: unknown } | LayerJson[];
}

/**
 * Distillation needs logits. A model whose output ends in a softmax (a layer with
 * `activation: 'softmax'`, or a trailing `Activation`/`Softmax` layer) is rewritten so it outputs
 * the logits underneath: the activation becomes linear, or the softmax layer is removed and the
 * output taken from its input. Argmax — hence accuracy — is unchanged by this.
 */
export function logitsModel(model: ModelFiles): ModelFiles {
  const json = modelJsonOf(model);
  const holder = json.modelTopology as { model_config?: TopologyJson } & TopologyJson;
  const topology: TopologyJson = holder.model_config ?? holder;
  const stripped = stripOutputSoftmax(topology);
  if (!stripped) return model;
  const files = model.files.map((file) => (file.name === MODEL_JSON_NAME ? jsonFile(json) : file));
  return { ...model, files, strippedSoftmax: stripped };
}

function stripOutputSoftmax(topology: TopologyJson): string | undefined {
  const config = topology.config;
  const layers = Array.isArray(config) ? config : config.layers;
  if (!layers || layers.length === 0) return undefined;
  const functional = !Array.isArray(config) && Array.isArray(config.output_layers);
  if (functional && (config as { output_layers: unknown[] }).output_layers.length !== 1) return undefined;
  const outputName = functional ? ((config as { output_layers: [string, number, number][] }).output_layers[0]![0]) : undefined;
  const index = functional ? layers.findIndex((layer) => (layer.config.name ?? layer.name) === outputName) : layers.length - 1;
  const last = layers[index];
  if (!last) return undefined;
  const name = last.config.name ?? last.name ?? last.class_name;
  const isSoftmaxLayer = last.class_name === 'Softmax' || (last.class_name === 'Activation' && last.config.activation === 'softmax');
  if (isSoftmaxLayer) {
    if (functional) {
      const inbound = (last.inbound_nodes?.[0] as [string, number, number, unknown][] | undefined)?.[0];
      if (!inbound) return undefined;
      (config as { output_layers: unknown[] }).output_layers = [[inbound[0], inbound[1], inbound[2]]];
    }
    layers.splice(index, 1);
    return `removed the output softmax layer '${name}'`;
  }
  if (last.config.activation === 'softmax') {
    last.config.activation = 'linear';
    return `output layer '${name}': softmax activation replaced by linear (logits)`;
  }
  return undefined;
}

function jsonFile(json: unknown): TransferFile {
  return { name: MODEL_JSON_NAME, data: new TextEncoder().encode(JSON.stringify(json)) };
}
