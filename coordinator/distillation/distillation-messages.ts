import { z } from 'zod';

/**
 * Control messages of a distillation round (merged into `clusterMessages`). Bulk data — teacher and
 * student model files, soft-target tables — travels as tensor frames after the message that lists
 * it (`coordinator/protocol/file-transfer.ts`), tagged with DISTILL_FRAME_EPOCH and the task's
 * `frameStep`, so it can never be mistaken for checkpoint frames.
 *
 *   targets:  coordinator `distill-targets-request` (+ teacher files) → peer `distill-targets` (+ table part)
 *   training: coordinator `distill-train-request` (+ table, student files) → peer `distill-ready` (ring port)
 *             → coordinator `distill-go` (next rank's address) → peer `distill-progress`… → `distill-trained`
 *             (rank 0: + the trained student's files)
 *   measuring: coordinator `distill-measure-request` (+ model files) → peer `distill-measured`
 *   any time: peer `distill-failed`; coordinator `distill-cancel` (the round) or `distill-abort` (one
 *             training attempt: a member was lost, the survivors keep their committed state)
 *
 * Training is elastic: every attempt has its own `frameStep`; `distill-ready` says which step the
 * peer's copy of the student has committed, and `distill-go` names the rank whose state everyone
 * starts from (`coordinator/epoch/choose-state-source.ts`, as for the cluster's training epochs).
 */
export const DISTILL_FRAME_EPOCH = 0xfffffff0;

const round = z.number().int().min(1);
const frameStep = z.number().int().min(0);
const fileEntry = z.object({ name: z.string().min(1).max(256), bytes: z.number().int().min(0) }).strict();
const files = z.array(fileEntry).max(8);
const text = z.string().max(2_000);
export const TRAINING_PHASES = ['distilled', 'alone'] as const;
export type TrainingPhase = (typeof TRAINING_PHASES)[number];
const phase = z.enum(TRAINING_PHASES);

/** How one student is trained; the same for the distilled student and the student alone, except alpha. */
export const studentTrainingSchema = z
  .object({
    /** Zoo name of the student; when null the student's files follow as frames. */
    zooModel: z.string().max(64).nullable(),
    seed: z.number().int().min(0),
    batchSize: z.number().int().min(1),
    steps: z.number().int().min(1),
    /** The transfer set: the first `samples` training samples. */
    samples: z.number().int().min(1),
    optimizer: z.enum(['adam', 'sgd', 'momentum', 'rmsprop']),
    learningRate: z.number().positive(),
    temperature: z.number().positive(),
    alpha: z.number().min(0).max(1),
    evalBatchSize: z.number().int().min(1),
    stepTimeoutSeconds: z.number().positive(),
  })
  .strict();
export type StudentTraining = z.infer<typeof studentTrainingSchema>;

export const distillationMessageShapes = {
  // ---- coordinator → peer ----
  'distill-targets-request': {
    round,
    frameStep,
    start: z.number().int().min(0),
    end: z.number().int().min(1),
    k: z.number().int().min(1),
    temperature: z.number().positive(),
    batchSize: z.number().int().min(1),
    teacher: files,
  },
  'distill-train-request': {
    round,
    phase,
    frameStep,
    rank: z.number().int().min(0),
    worldSize: z.number().int().min(1),
    /** Ring membership epoch: distinct from training epochs, so stray links are refused. */
    ringEpoch: z.number().int().min(0),
    training: studentTrainingSchema,
    /** The soft-target table (absent for the student alone), then the student's files. */
    targets: fileEntry.nullable(),
    student: files,
  },
  'distill-go': {
    round,
    phase,
    frameStep,
    /** Rank whose student state (weights and optimizer) every rank takes, and the step it holds. */
    stateRoot: z.number().int().min(0),
    startStep: z.number().int().min(0),
    next: z.object({ host: z.string().min(1).max(256), port: z.number().int().min(1).max(65_535) }).strict().nullable() },
  'distill-measure-request': {
    round,
    frameStep,
    name: z.string().min(1).max(64),
    model: files,
    evalBatchSize: z.number().int().min(1),
    inferenceBatch: z.number().int().min(1),
    inferenceSamples: z.number().int().min(1),
  },
  'distill-cancel': { round, reason: text },
  'distill-abort': { round, phase, frameStep, reason: text },

  // ---- peer → coordinator ----
  'distill-targets': { round, frameStep, start: z.number().int().min(0), count: z.number().int().min(1), table: fileEntry },
  'distill-ready': {
    round,
    phase,
    frameStep,
    ringPort: z.number().int().min(1).max(65_535).nullable(),
    /** The last step of this phase whose update is in this peer's student (0: initial weights). */
    committedStep: z.number().int().min(0),
  },
  'distill-progress': { round, phase, step: z.number().int().min(0), totalSteps: z.number().int().min(1), loss: z.number() },
  'distill-trained': {
    round,
    phase,
    frameStep,
    rank: z.number().int().min(0),
    /** Rank 0 only (the others send null and no files). */
    accuracy: z.number().min(0).max(1).nullable(),
    testLoss: z.number().nullable(),
    trainSeconds: z.number().min(0),
    model: files,
  },
  'distill-measured': {
    round,
    name: z.string().min(1).max(64),
    accuracy: z.number().min(0).max(1),
    testLoss: z.number(),
    testSamples: z.number().int().min(1),
    msPerSample: z.number().min(0),
    inferenceBatch: z.number().int().min(1),
    backend: z.string().max(32),
  },
  /** `frameStep`: the task that failed (a stale failure of an aborted attempt is then ignored). */
  'distill-failed': { round, frameStep: frameStep.optional(), reason: text },
};
