import { z } from 'zod';

/**
 * The `pipeline` section of a cluster job (used only with `mode: "pipeline"`): how the model is cut
 * into K stages, one per peer, and how each mini-batch flows through them (GPipe, peer/pipeline/).
 * Defaults suit the zoo models: 2 stages, 4 micro-batches of a 128-sample batch, GPipe order,
 * stages balanced by counted FLOPs (for an MLP that is its parameter count; for the CNN it keeps
 * the convolutions from all landing in one stage).
 */
export const SCHEDULES = ['gpipe', '1f1b'] as const;
export const BALANCE_RULES = ['flops', 'parameters', 'time'] as const;
export type BalanceRuleName = (typeof BALANCE_RULES)[number];

export const pipelineSectionSchema = z
  .object({
    /** K: stages, one peer each. The job starts when K peers are there. */
    stages: z.number().int().min(1).max(64).default(2),
    /** M: micro-batches per mini-batch (the bubble is (K−1)/(M+K−1)). */
    microBatches: z.number().int().min(1).max(4096).default(4),
    /** 'gpipe' (all forwards, then all backwards) or '1f1b' (caps activations in flight). */
    schedule: z.enum(SCHEDULES).default('gpipe'),
    /** Keep only each stage's inputs and recompute the forward pass during backward. */
    rematerialize: z.boolean().default(false),
    /** Layers per stage: by counted FLOPs, parameters, time measured on the coordinator, or a list such as [2, 2]. */
    balance: z.union([z.enum(BALANCE_RULES), z.array(z.number().int().min(1)).min(1).max(64)]).default('flops'),
    /**
     * R: pipeline replicas (pipeline + data parallel). Each replica's first stage reads its own slice
     * of the global batch; stage s of every replica averages its gradients over a ring of the R peers
     * holding stage s. The job needs K·R peers; after a loss it goes on with fewer whole replicas
     * while peers.min allows it (see docs/pipeline.md). "auto": as many as the peers make, from
     * ⌈peers.min / K⌉ up to ⌊peers.max / K⌋, growing as peers join.
     */
    replicas: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
  })
  .strict();

export type PipelineSection = z.infer<typeof pipelineSectionSchema>;

/**
 * Fewest replicas an epoch may train with: as many whole pipelines as `peers.min` peers make (at
 * least one). The default peers.min (1) lets a job lose replicas down to one and carry on; set
 * peers.min to K·R to wait for a replacement instead.
 */
export function minReplicasOf(job: { peers: { min: number; max: number }; pipeline?: PipelineSection | undefined }, stages: number): number {
  return Math.min(replicasWanted(job, stages), Math.max(1, Math.ceil(job.peers.min / stages)));
}

/** Most replicas an epoch trains with: R, or for "auto" as many whole pipelines as peers.max peers make. */
export function replicasWanted(job: { peers: { max: number }; pipeline?: PipelineSection | undefined }, stages: number): number {
  const replicas = job.pipeline?.replicas ?? 1;
  return replicas === 'auto' ? autoReplicas(job.peers.max, stages) : replicas;
}

function autoReplicas(maxPeers: number, stages: number): number {
  return Math.max(1, Math.min(64, Math.floor(maxPeers / stages)));
}

/** The pipeline settings of a job in pipeline mode (defaults filled in by parseClusterJob). */
export function pipelineOf(job: { mode: string; pipeline?: PipelineSection | undefined }): PipelineSection {
  if (job.mode !== 'pipeline' || !job.pipeline) throw new Error('not a pipeline job');
  return job.pipeline;
}

/** Rules between the pipeline section and the rest of the job, on the raw input (defaults where absent). */
export function pipelineSectionProblems(input: Record<string, unknown>): string[] {
  const section = (typeof input.pipeline === 'object' && input.pipeline !== null && !Array.isArray(input.pipeline) ? input.pipeline : undefined) as Record<string, unknown> | undefined;
  const problems: string[] = [];
  if (input.mode !== 'pipeline') {
    if (section !== undefined) problems.push(`pipeline: only used with mode "pipeline"; set "mode": "pipeline" or remove the section (mode is ${JSON.stringify(input.mode ?? 'data-parallel')})`);
    return problems;
  }
  const number = (raw: unknown, fallback: number): number => (typeof raw === 'number' && Number.isFinite(raw) ? raw : fallback);
  const stages = number(section?.stages, 2);
  const microBatches = number(section?.microBatches, 4);
  const peers = (typeof input.peers === 'object' && input.peers !== null ? input.peers : {}) as Record<string, unknown>;
  const auto = section?.replicas === 'auto';
  // "auto" is checked at its most: ⌊peers.max / K⌋ replicas.
  const replicas = auto ? autoReplicas(number(peers.max, 16), stages) : number(section?.replicas, 1);
  const batchSize = number(input.batchSize, 128);
  if (microBatches > batchSize && batchSize >= 1) problems.push(`pipeline.microBatches: must be at most batchSize (${batchSize}): every micro-batch needs a sample, got ${microBatches}`);
  else if (replicas > 1 && microBatches * replicas > batchSize && batchSize >= 1) {
    problems.push(
      `pipeline.replicas: each of the ${replicas} replicas${auto ? ` ("auto" with peers.max ${number(peers.max, 16)})` : ''} trains on its slice of the global batch (batchSize ${batchSize} / ${replicas} = ${Math.floor(batchSize / replicas)} samples or so), which must hold pipeline.microBatches (${microBatches}) samples; use ${auto ? 'a smaller peers.max' : 'fewer replicas'} or micro-batches, or a larger batchSize, got ${auto ? '"auto"' : replicas}`,
    );
  }
  const balance = section?.balance;
  if (Array.isArray(balance) && balance.length !== stages) {
    problems.push(`pipeline.balance: lists ${balance.length} stage${balance.length === 1 ? '' : 's'} but pipeline.stages is ${stages}, got [${balance.join(', ')}]`);
  }
  if (typeof peers.max === 'number' && peers.max < stages * replicas) {
    const what = replicas > 1 ? `${replicas} replicas of a ${stages}-stage pipeline need ${stages * replicas} peers (one per stage of each replica)` : `a pipeline of ${stages} stages needs ${stages} peers (one per stage)`;
    problems.push(`peers.max: ${what}, got ${peers.max}`);
  }
  return problems;
}
