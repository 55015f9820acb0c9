import { z } from 'zod';
import { formatIssues, JobValidationError, trainingJobSchema } from '../../shared/job/schema.js';
import { pipelineSectionSchema, pipelineSectionProblems } from './pipeline-section.js';
import { dataParallelFields, dataParallelProblems } from './data-parallel-fields.js';
import { peersSectionSchema } from './peers-section.js';

/**
 * The cluster job: the training job (`shared/job/schema.ts`) plus what only a cluster needs — how
 * many peers, how long to wait for them, how often to checkpoint. One schema, so the coordinator
 * validates the file and every peer validates what it receives with the same rules.
 */
export const JOB_MODES = ['data-parallel', 'pipeline'] as const;
export type JobMode = (typeof JOB_MODES)[number];

const checkpointSchema = z
  .object({
    /** Checkpoint after every N optimizer steps (0: not by steps). */
    everySteps: z.number().int().min(0).default(200),
    /** Checkpoint at least this often, in seconds of training (0: not by time). */
    everySeconds: z.number().min(0).default(120),
    /** Complete checkpoints kept on disk; older ones are deleted. */
    keep: z.number().int().min(1).max(1000).default(3),
    /** Folder of the checkpoints (default runs/<job name>/checkpoints), relative to the working directory. */
    dir: z.string().min(1).optional(),
  })
  .strict();

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const clusterJobSchema = trainingJobSchema.extend({
  /** Names the run folder. Default: the job file's name. */
  name: z.string().regex(NAME, 'must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit').optional(),
  mode: z.enum(JOB_MODES).default('data-parallel'),
  peers: peersSectionSchema.prefault({}),
  checkpoint: checkpointSchema.prefault({}),
  ...dataParallelFields,
  /** Pipeline mode only: stages, micro-batches, schedule, balance (see pipeline-section.ts). */
  pipeline: pipelineSectionSchema.optional(),
  /** Longest a peer waits for its ring neighbours within one step before the epoch is declared failed. */
  stepTimeoutSeconds: z.number().positive().max(3600).default(60),
});

export type ClusterJob = z.infer<typeof clusterJobSchema>;
export type ClusterJobInput = z.input<typeof clusterJobSchema>;

/** Validates a cluster job; every bad field is named in one JobValidationError. */
export function parseClusterJob(value: unknown, source = 'cluster job'): ClusterJob {
  const result = clusterJobSchema.safeParse(value, { reportInput: true });
  // Rules between fields are checked even when a field is invalid, so one run reports everything.
  const problems = [...(result.success ? [] : formatIssues(result.error)), ...crossFieldProblems(value)];
  if (!result.success || problems.length > 0) throw new JobValidationError(source, problems);
  // A pipeline job always carries its (defaulted) section, so every peer sees the same settings.
  if (result.data.mode === 'pipeline') result.data.pipeline ??= pipelineSectionSchema.parse({});
  return result.data;
}

/** Checks that involve several fields, on whatever the input holds (defaults where a field is absent). */
function crossFieldProblems(value: unknown): string[] {
  const input = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const peers = (typeof input.peers === 'object' && input.peers !== null ? input.peers : {}) as Record<string, unknown>;
  const number = (raw: unknown, fallback: number): number => (typeof raw === 'number' && Number.isFinite(raw) ? raw : fallback);
  const min = number(peers.min, 1);
  const max = number(peers.max, 16);
  const batchSize = number(input.batchSize, 128);
  const problems: string[] = [];
  if (max < min) problems.push(`peers.max: must be at least peers.min (${min}), got ${max}`);
  else if (max > batchSize && batchSize >= 1) {
    problems.push(`peers.max: must be at most batchSize (${batchSize}): the global batch is divided among the peers and each needs at least one sample, got ${max}`);
  }
  problems.push(...pipelineSectionProblems(input));
  problems.push(...dataParallelProblems(input));
  return problems;
}

/**
 * The fields that decide which numbers training computes. A checkpoint may only be resumed by a
 * job with the same values (the mode too: a pipeline checkpoint keeps its optimizer state by stage);
 * everything else (peers, epochs, checkpoint policy…) may change.
 */
export const TRAJECTORY_FIELDS = ['model', 'dataset', 'batchSize', 'optimizer', 'learningRate', 'seed', 'mode'] as const satisfies readonly (keyof ClusterJob)[];

/** `field: saved → now` for every trajectory field that differs. */
export function trajectoryDifferences(saved: Partial<ClusterJob>, current: ClusterJob): string[] {
  // JSON: `dataset` may be an object.
  return TRAJECTORY_FIELDS.filter((field) => JSON.stringify(saved[field]) !== JSON.stringify(current[field])).map(
    (field) => `${field}: ${JSON.stringify(saved[field])} → ${JSON.stringify(current[field])}`,
  );
}
