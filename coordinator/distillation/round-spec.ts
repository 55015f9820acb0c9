import { z } from 'zod';
import { formatIssues, JobValidationError } from '../../shared/job/schema.js';
import { peersSectionSchema } from '../job/peers-section.js';
import { DISTILL_DEFAULTS as D } from './round-defaults.js';

/**
 * What one distillation round does. Every field has a default except the teacher and the student;
 * the defaults (round-defaults.ts, which also names the CLI's default student) are what
 * `npm run bench:distill` measures. The same schema validates the CLI's flags, spec files and
 * whatever the dashboard sends.
 */
export const roundSpecSchema = z
  .object({
    /** A TensorFlow.js model.json, its folder, a checkpoint or run folder of this cluster, or "previous" (the last round's student). */
    teacher: z.string().min(1),
    /** A zoo model name (e.g. "mlp-small") or a model file like the teacher's (trained further from its weights). */
    student: z.string().min(1),
    /** Teacher logits kept per sample. */
    topK: z.number().int().min(1).max(256).default(D.topK),
    temperature: z.number().positive().max(1000).default(D.temperature),
    /** Weight of the soft-target term; 1 − alpha weighs the hard labels. */
    alpha: z.number().min(0).max(1).default(D.alpha),
    /** Student budget: optimizer steps of one global batch each (0: `epochs` passes instead)… */
    steps: z.number().int().min(0).max(10_000_000).default(D.steps),
    /** …or passes over the transfer set, when `steps` is 0 (giving `epochs` alone sets `steps` to 0)… */
    epochs: z.number().positive().max(10_000).default(1),
    /** …either capped at this many steps (0: no cap). */
    maxSteps: z.number().int().min(0).default(0),
    /** The transfer set: the first N training samples (0: all of them). */
    transferSamples: z.number().int().min(0).default(D.transferSamples),
    batchSize: z.number().int().min(1).max(65_536).default(D.batchSize),
    optimizer: z.enum(['adam', 'sgd', 'momentum', 'rmsprop']).default(D.optimizer),
    learningRate: z.number().positive().max(10).default(D.learningRate),
    /** Seeds the student's weights and the batch order (the same for the distilled student and the student alone). */
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(D.seed),
    /** Also train the student alone on hard labels with the same budget (the report's baseline). */
    baseline: z.boolean().default(true),
    evalBatchSize: z.number().int().min(1).default(1000),
    /** Inference timing: samples per predict call, and test samples timed. */
    inferenceBatch: z.number().int().min(1).max(10_000).default(100),
    inferenceSamples: z.number().int().min(1).max(10_000).default(500),
    /** Teacher forward pass batch when computing soft targets. */
    targetsBatchSize: z.number().int().min(1).max(65_536).default(500),
    peers: peersSectionSchema.prefault({}),
    /** Longest silence (no progress, no answer) from the members of a phase before the round fails. */
    stepTimeoutSeconds: z.number().positive().max(3600).default(60),
    /** Longest a peer may take for its shard of soft targets, or for measuring a model. */
    phaseTimeoutSeconds: z.number().positive().max(86_400).default(900),
  })
  .strict();

export type RoundSpec = z.infer<typeof roundSpecSchema>;
export type RoundSpecInput = z.input<typeof roundSpecSchema>;

/** The teacher value that means "the student of the newest round". */
export const PREVIOUS_ROUND = 'previous';

/** Validates a round spec; every bad field is named in one error. */
export function parseRoundSpec(value: unknown, source = 'distillation round'): RoundSpec {
  // A budget given in epochs replaces the default budget in steps.
  if (typeof value === 'object' && value !== null && 'epochs' in value && !('steps' in value)) value = { ...value, steps: 0 };
  const result = roundSpecSchema.safeParse(value, { reportInput: true });
  const problems = result.success ? [] : formatIssues(result.error);
  if (result.success) {
    const spec = result.data;
    if (spec.peers.max < spec.peers.min) problems.push(`peers.max: must be at least peers.min (${spec.peers.min}), got ${spec.peers.max}`);
    if (spec.peers.max > spec.batchSize) problems.push(`peers.max: must be at most batchSize (${spec.batchSize}): each peer needs at least one sample of a batch, got ${spec.peers.max}`);
    if (spec.transferSamples > 0 && spec.transferSamples < spec.batchSize) problems.push(`transferSamples: must be at least batchSize (${spec.batchSize}) or 0 for all, got ${spec.transferSamples}`);
  }
  if (!result.success || problems.length > 0) throw new JobValidationError(source, problems);
  return result.data;
}

/** Optimizer steps of a student: `steps`, or `epochs` passes over the transfer set; capped by `maxSteps`. */
export function studentSteps(spec: Pick<RoundSpec, 'steps' | 'epochs' | 'maxSteps' | 'batchSize'>, transferSamples: number): number {
  const perEpoch = Math.floor(transferSamples / spec.batchSize);
  if (perEpoch < 1) throw new Error(`batchSize ${spec.batchSize} is larger than the ${transferSamples} transfer samples`);
  const steps = spec.steps > 0 ? spec.steps : Math.max(1, Math.round(spec.epochs * perEpoch));
  return spec.maxSteps > 0 ? Math.min(spec.maxSteps, steps) : steps;
}
