import { z } from 'zod';
import { defineMessages, type MessageOf } from '../../shared/transport/index.js';
import { distillationMessageShapes } from '../distillation/distillation-messages.js';

/**
 * The control protocol between the coordinator and its peers (msgpackr over an authenticated link).
 * The coordinator decides who trains (membership epochs, ranks, the ring order) and when (start,
 * checkpoint, stop); tensors between peers never pass through it. The only tensor frames on this
 * link are checkpoint files: uploaded by rank 0, and sent back to a peer to resume from.
 *
 * A session:  peer `join` → `welcome` (job) → `prepared` … then per membership epoch:
 *             `assign` → `ready` (ring port) → `start` → `progress`… → `epoch-ended`.
 * Pipeline mode:  `assign-stage` → `ready` (stage port [, replica-ring port]) → `start` (next stage [, next replica]) [→ `restore` per stage]
 *             → `stage-report`… (+ `progress` from the last stage) → `epoch-ended`.
 */
const epoch = z.number().int().min(0);
const step = z.number().int().min(0);
const nodeId = z.string().min(1).max(128);
const address = z.object({ host: z.string().min(1).max(256), port: z.number().int().min(1).max(65_535) }).strict();
const fileEntry = z.object({ name: z.string().min(1).max(256), bytes: z.number().int().min(0) }).strict();
const text = z.string().max(2_000);
/** Where the data iterator stands after a step (shared/data/pipeline/position.ts), naming its pipeline. */
const dataPosition = z.object({ epoch, index: z.number().int().min(0), pipeline: z.string().max(16_000).optional() }).strict();

/** One member of an epoch: its rank in the ring, and (pipeline mode) its stage. */
export const topologyMember = z
  .object({
    nodeId,
    rank: z.number().int().min(0),
    /** Pipeline stage this member runs; null in data-parallel mode (the hook for `peer/pipeline/`). */
    stage: z.number().int().min(0).nullable(),
    /** Pipeline + data parallel: which pipeline replica the stage belongs to (absent: 0). */
    replica: z.number().int().min(0).optional(),
  })
  .strict();
export type TopologyMember = z.infer<typeof topologyMember>;

/** One span of a stage's timeline (peer/pipeline/timeline/), times in µs on the Unix epoch clock. */
const stageSpan = z
  .object({
    kind: z.enum(['forward', 'backward', 'idle', 'send', 'update', 'all-reduce', 'data']),
    micro: z.number().int().min(0).nullable(),
    startUs: z.number(),
    durationUs: z.number().min(0),
  })
  .strict();

/** Where an epoch's starting state comes from: a peer's memory, a checkpoint, or fresh initial weights. */
export const STATE_SOURCES = ['fresh', 'memory', 'checkpoint'] as const;
export type StateSource = (typeof STATE_SOURCES)[number];

export const clusterMessages = defineMessages({
  // ---- peer → coordinator ----
  /** First message: who this peer is (its node id came with the link handshake). */
  join: { hostname: z.string().max(256), pid: z.number().int(), backend: z.string().max(32) },
  /** The job is loaded (backend, data, model): this peer can be given a rank. */
  prepared: {
    runId: z.string(),
    backend: z.string().max(32),
    trainSamples: z.number().int().min(1),
    /** Elements of the flattened training state (weights + optimizer), and a hash of its layout. */
    stateElements: z.number().int().min(1),
    stateLayout: z.string().max(128),
  },
  /** The peer cannot take part in this job (e.g. a model file missing on that machine). */
  unfit: { runId: z.string(), message: text },
  /** Listening for the previous rank; `committedStep` is the newest state it holds (−1: none). */
  ready: {
    epoch,
    ringPort: z.number().int().min(1).max(65_535).nullable(),
    committedStep: z.number().int().min(-1),
    /** Pipeline with replicas: where this stage listens for the same stage of the previous replica (its replica ring). */
    replicaPort: z.number().int().min(1).max(65_535).optional(),
  },
  /** Sent after every optimizer step. */
  progress: {
    epoch,
    step,
    loss: z.number(),
    samples: z.number().int().min(0),
    samplesPerSecond: z.number(),
    exchangeMs: z.number(),
    // Where the step's time went and what it cost, for the dashboard and /metrics (optional: not every sender measures them).
    computeMs: z.number().min(0).optional(),
    dataWaitMs: z.number().min(0).optional(),
    /** dataWaitMs as a share of the step (TensorFlow's input-bound measure), and its verdict: <5% not, 5–20% moderately, >20% highly. */
    stallPercent: z.number().min(0).max(100).optional(),
    inputBound: z.enum(['not input-bound', 'moderately input-bound', 'highly input-bound']).optional(),
    allReduceMs: z.number().min(0).optional(),
    allReduceBytes: z.number().int().min(0).optional(),
    /** Share of this peer's slice classified right (before the update). */
    accuracy: z.number().min(0).max(1).optional(),
    rssBytes: z.number().int().min(0).optional(),
  },
  /** A checkpoint follows as tensor frames (tensorId = file index), then the coordinator writes it. */
  checkpoint: { epoch, step, files: z.array(fileEntry).max(64), loss: z.number().nullable(), dataPosition: dataPosition.optional() },
  /** Rank 0 is evaluating on the test set (sent per batch, so a long evaluation is not mistaken for a hang). */
  evaluating: { epoch, done: z.number().int().min(0), total: z.number().int().min(0) },
  /** Final evaluation on the test set (rank 0, after the last step). */
  result: { epoch, step, accuracy: z.number().min(0).max(1), loss: z.number(), samples: z.number().int() },
  /** This epoch is over for the peer. */
  'epoch-ended': { epoch, committedStep: z.number().int().min(-1), outcome: z.enum(['finished', 'stopped', 'failed', 'aborted']), reason: text },

  // ---- pipeline mode, peer → coordinator (see coordinator/epoch/pipeline-epoch-controller.ts) ----
  /** After every mini-batch, from every stage: where its time went, and the step's compute-row spans (dashboard Gantt). */
  'stage-report': {
    epoch,
    stage: z.number().int().min(0),
    step,
    stepMs: z.number().min(0),
    computeMs: z.number().min(0),
    idleMs: z.number().min(0),
    spans: z.array(stageSpan).max(4_096),
  },
  /** One stage's part of a checkpoint (its layers' weights and optimizer slots) follows as tensor frames. */
  'stage-checkpoint': { epoch, step, stage: z.number().int().min(0), files: z.array(fileEntry).max(8), loss: z.number().nullable(), dataPosition: dataPosition.optional() },

  // ---- coordinator → peer ----
  /** The job (validated again by the peer) and the run it belongs to. */
  welcome: { runId: z.string(), job: z.record(z.string(), z.unknown()), coordinatorId: nodeId },
  /** Refused: why, for the peer's log; the peer exits or retries as told. */
  refuse: { reason: text, retry: z.boolean() },
  /** Membership epoch `epoch`: this peer's rank and the whole topology. Ends any earlier epoch. */
  assign: { epoch, rank: z.number().int().min(0), worldSize: z.number().int().min(1), members: z.array(topologyMember).min(1) },
  /** Everyone is listening: dial `next`, get the state from rank `stateRoot`, train from `startStep`. */
  start: {
    epoch,
    next: address.nullable(),
    stateRoot: z.number().int().min(0),
    stateSource: z.enum(STATE_SOURCES),
    startStep: step,
    totalSteps: step,
    /** Pipeline with replicas: the same stage of the next replica, to dial for the stage's replica ring. */
    replicaNext: address.optional(),
    /** With stateSource 'checkpoint': the data position the checkpoint saved, where every rank's iterator resumes. */
    dataPosition: dataPosition.optional(),
  },
  /** To the state root when stateSource is 'checkpoint': the checkpoint's files follow as tensor frames. */
  restore: { epoch, step, files: z.array(fileEntry).max(64) },
  /** To rank 0: upload a checkpoint after the current step (time-based or on demand). */
  'checkpoint-request': { epoch, reason: text },
  /** Stop this epoch after a step all members agree on (new peers are waiting to join). */
  'stop-request': { epoch, reason: text },
  /** This epoch is over (a member failed or left); wait for the next assignment. */
  abort: { epoch, reason: text },
  /** Pipeline mode: this peer runs stage `stage` of `stages`, with `balance[i]` layers in stage i. Ends any earlier epoch. */
  'assign-stage': {
    epoch,
    stage: z.number().int().min(0),
    stages: z.number().int().min(1),
    balance: z.array(z.number().int().min(1)).min(1).max(64),
    members: z.array(topologyMember).min(1),
    /** Pipeline + data parallel: this peer's replica, of `replicas` (absent: 0 of 1). */
    replica: z.number().int().min(0).optional(),
    replicas: z.number().int().min(1).optional(),
  },
  /** Pipeline mode: after committing step `step`, every stage checkpoints its part, or stops (all at the same step). */
  'stage-sync': { epoch, step, action: z.enum(['checkpoint', 'stop']), reason: text },
  /** The job is over (finished, failed or cancelled): leave. */
  shutdown: { reason: text, success: z.boolean() },

  // ---- distillation rounds (both directions; see coordinator/distillation/distillation-messages.ts) ----
  ...distillationMessageShapes,
});

export type ClusterMessage = MessageOf<typeof clusterMessages>;
export type ClusterMessageOf<T extends ClusterMessage['type']> = Extract<ClusterMessage, { type: T }>;

export const PEER_ROLE = 'peer';
export const COORDINATOR_ROLE = 'coordinator';
