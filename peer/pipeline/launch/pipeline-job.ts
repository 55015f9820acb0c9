import { z } from 'zod';
import { BACKEND_FLAGS } from '../../../shared/engine/backend-candidates.js';
import { OPTIMIZERS } from '../../../shared/job/schema.js';
import { SCHEDULE_KINDS } from '../schedule/schedule.js';

/**
 * What every stage process of a launched pipeline runs: the same job on every stage and replica
 * (each takes its own part from its place). `runs` are trained one after the other over the same
 * links, each from fresh weights, so one launch can compare schedules.
 */
export const pipelineRunSchema = z
  .object({
    microBatches: z.number().int().min(1),
    schedule: z.enum(SCHEDULE_KINDS as [string, ...string[]]).default('gpipe'),
    rematerialize: z.boolean().default(false),
    /** Dense weights' gradients once per mini-batch instead of per micro-batch (StageCompute). */
    deferWeightGradients: z.boolean().default(true),
    /** The first stage multiplies its deferred weight gradients every `settleRows` rows during its backward passes (default: all at the update; see stage-step.ts). */
    settleRows: z.number().int().min(1).optional(),
    /** The first stage multiplies its deferred weight gradients while it waits for an output gradient (default true; see stage-step.ts). */
    settleWhileWaiting: z.boolean().default(true),
  })
  .strict();

export const pipelineJobSchema = z
  .object({
    model: z.string().min(1).default('mlp'),
    seed: z.number().int().min(0).default(42),
    /** MNIST, or random images of MNIST's shape (fast to make; for tests). */
    data: z.union([z.literal('mnist'), z.object({ synthetic: z.number().int().min(1) }).strict()]).default('mnist'),
    /** Layers per stage, or 'parameters' to balance by parameter count (every stage computes the same). */
    balance: z.union([z.array(z.number().int().min(1)).min(1), z.literal('parameters')]).default('parameters'),
    /** Samples per mini-batch per replica. */
    batchSize: z.number().int().min(1).default(128),
    steps: z.number().int().min(1),
    optimizer: z.enum(OPTIMIZERS).default('adam'),
    learningRate: z.number().positive().default(0.001),
    backend: z.enum(BACKEND_FLAGS).default('wasm'),
    runs: z.array(pipelineRunSchema).min(1),
    /** Where each stage writes its weights and timeline per run (run-<i>/…). */
    outDir: z.string().optional(),
    receiveTimeoutMs: z.number().int().min(1).default(60_000),
    /** Largest tensor frame on a stage link. */
    chunkBytes: z.number().int().min(8).optional(),
  })
  .strict();

export type PipelineJob = z.infer<typeof pipelineJobSchema>;
export type PipelineJobInput = z.input<typeof pipelineJobSchema>;
export type PipelineRun = z.infer<typeof pipelineRunSchema>;

export const PIPELINE_JOB_ENV = 'RINGPIPE_PIPELINE_JOB';

/** What a stage reports after each run. */
export interface StageRunReport {
  run: number;
  stage: number;
  replica: number;
  balance: number[];
  losses: number[];
  peakInFlight: number;
  peakHeldBytes: number;
  trainMs: number;
  /** CPU time this process used during the run (user + system). */
  cpuMs: number;
  /** CPU time the whole machine used during the run, all processes (Linux /proc/stat; absent elsewhere). */
  machineCpuMs?: number;
  steps: number;
  weightsFile?: string;
  timelineFile?: string;
}

export function stageFilePrefix(outDir: string, run: number, stage: number, replica: number): string {
  return `${outDir}/run-${run}/stage-${stage}-replica-${replica}`;
}
