import { z } from 'zod';
import { BACKEND_FLAGS } from '../engine/backend-candidates.js';

/**
 * The training job: what to train, on what, and how. Shared by `npm run train`, the coordinator's
 * job file and the peers that receive it. Every field has a default so a job file only says what differs.
 */
export const OPTIMIZERS = ['adam', 'sgd', 'momentum', 'rmsprop'] as const;

export const trainingJobSchema = z
  .object({
    model: z.string().min(1).default('mlp').describe('zoo model name (mlp, cnn) or path of a TensorFlow.js model.json'),
    dataset: z.literal('mnist').default('mnist'),
    batchSize: z.number().int().min(1).max(65536).default(128),
    optimizer: z.enum(OPTIMIZERS).default('adam'),
    learningRate: z.number().positive().max(10).default(0.001),
    epochs: z.number().positive().max(10000).default(2),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(42),
    backend: z.enum(['auto', ...BACKEND_FLAGS]).default('auto'),
    evalBatchSize: z.number().int().min(1).max(65536).default(1000),
    /** Stop after this many optimizer steps even if `epochs` is not reached (0: no limit). */
    maxSteps: z.number().int().min(0).default(0),
  })
  .strict();

export type TrainingJob = z.infer<typeof trainingJobSchema>;
export type TrainingJobInput = z.input<typeof trainingJobSchema>;

export class JobValidationError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'JobValidationError';
  }
}

const TYPE_NAMES: Record<string, string> = { int: 'a whole number', number: 'a number', string: 'a string', boolean: 'true or false', object: 'an object', array: 'a list' };

/** A sentence for one zod issue, in the user's terms rather than zod's. */
function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'too_small':
      return `must be ${issue.inclusive === false ? 'greater than' : 'at least'} ${issue.minimum}${issue.origin === 'string' ? ' characters long' : ''}`;
    case 'too_big':
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${issue.maximum}`;
    case 'invalid_value':
      return `must be ${issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    default:
      return issue.message;
  }
}

/** Each problem names the field the way the user wrote it, e.g. `batchSize: must be a whole number, got 12.5`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') return `${field}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    const input = issue.input !== undefined ? `, got ${JSON.stringify(issue.input)}` : '';
    return `${field}: ${describeIssue(issue)}${input}`;
  });
}

export function parseTrainingJob(value: unknown, source = 'job'): TrainingJob {
  const result = trainingJobSchema.safeParse(value, { reportInput: true });
  if (!result.success) throw new JobValidationError(source, formatIssues(result.error));
  return result.data;
}
