import { readJobFile } from '../job/load-job-file.js';
import { JobValidationError, parseTrainingJob, type TrainingJob } from '../job/schema.js';

/** Command-line flags that set training-job fields; they override a `--job` file. */
const FIELD_FLAGS = {
  model: { flag: 'model', type: 'string' },
  batchSize: { flag: 'batch-size', type: 'number' },
  optimizer: { flag: 'optimizer', type: 'string' },
  learningRate: { flag: 'lr', type: 'number' },
  epochs: { flag: 'epochs', type: 'number' },
  seed: { flag: 'seed', type: 'number' },
  backend: { flag: 'backend', type: 'string' },
  maxSteps: { flag: 'max-steps', type: 'number' },
} as const;

export const TRAINING_FLAGS_HELP = `  --job FILE          JSON job file (fields below; flags override it)
  --model NAME|PATH   zoo model (mlp, cnn) or a TensorFlow.js model.json   [mlp]
  --epochs N          passes over the training set (fractions allowed)     [2]
  --batch-size N      samples per optimizer step                          [128]
  --optimizer NAME    adam | sgd | momentum | rmsprop                     [adam]
  --lr X              learning rate                                       [0.001]
  --seed N            seed for weights and shuffling                      [42]
  --backend NAME      auto | node-gpu | node | wasm | cpu                 [auto]
  --max-steps N       stop after N steps (0: no limit)                    [0]`;

export const trainingFlagOptions = {
  job: { type: 'string' },
  ...Object.fromEntries(Object.values(FIELD_FLAGS).map((f) => [f.flag, { type: 'string' as const }])),
} as const;

function toNumber(flag: string, raw: string): number | string {
  const value = Number(raw);
  // Leave non-numbers as strings: the schema then names the field and shows what was given.
  return raw.trim() !== '' && Number.isFinite(value) ? value : raw;
}

/** Builds and validates a training job from `--job` plus field flags. */
export async function jobFromFlags(values: Record<string, string | boolean | undefined>): Promise<TrainingJob> {
  const jobFile = typeof values.job === 'string' ? values.job : undefined;
  const input: Record<string, unknown> = jobFile ? await readJobFile(jobFile) : {};
  for (const [field, { flag, type }] of Object.entries(FIELD_FLAGS)) {
    const raw = values[flag];
    if (typeof raw !== 'string') continue;
    input[field] = type === 'number' ? toNumber(flag, raw) : raw;
  }
  try {
    return parseTrainingJob(input, jobFile ? `job (file ${jobFile} and flags)` : 'job (from flags)');
  } catch (err) {
    if (!(err instanceof JobValidationError)) throw err;
    // Name the flag next to the field when the bad value came from the command line.
    const problems = err.problems.map((p) => {
      const field = p.slice(0, p.indexOf(':'));
      const flag = (FIELD_FLAGS as Record<string, { flag: string }>)[field]?.flag;
      return flag && typeof values[flag] === 'string' ? `${field} (--${flag})${p.slice(field.length)}` : p;
    });
    throw new JobValidationError(err.source, problems);
  }
}

