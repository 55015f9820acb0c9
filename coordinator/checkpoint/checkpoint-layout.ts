/**
 * Files of one checkpoint folder (`step-00000200/`), relative to it. The model folder is a plain
 * TensorFlow.js LayersModel: `tf.loadLayersModel('…/step-00000200/model/model.json')` loads it.
 * The manifest is written last: a folder without a valid manifest is not a checkpoint.
 */
export const MODEL_FILE = 'model/model.json';
export const WEIGHTS_FILE = 'model/weights.bin';
export const OPTIMIZER_FILE = 'optimizer/optimizer.json';
export const OPTIMIZER_WEIGHTS_FILE = 'optimizer/weights.bin';
export const TRAINING_STATE_FILE = 'training-state.json';
export const MANIFEST_FILE = 'manifest.json';

/** Files a peer uploads (the coordinator adds the training state and the manifest). */
export const UPLOADED_FILES = [WEIGHTS_FILE, MODEL_FILE, OPTIMIZER_WEIGHTS_FILE, OPTIMIZER_FILE] as const;

const STEP_DIGITS = 8;
const FOLDER = /^step-(\d+)$/;

export function checkpointFolderName(step: number): string {
  return `step-${String(step).padStart(STEP_DIGITS, '0')}`;
}

/** The step of a checkpoint folder name, or undefined for anything else. */
export function stepOfFolder(name: string): number | undefined {
  const match = FOLDER.exec(name);
  return match ? Number(match[1]) : undefined;
}
