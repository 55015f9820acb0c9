/**
 * GPipe pipeline-parallel training across peers.
 *
 *   const stage = takeStage(model, balanceByParameters(parameterCounts(model), 3), myIndex);
 *   const node = await StageNode.listen({ stage: myIndex, stages: 3, cluster });   // tell others node.address
 *   const neighbours = await node.join({ next: nextStageAddress });
 *   await runPipelineStage({ stage, stages: 3, neighbours, schedule: { microBatches: 8 },
 *                            batchSize: 128, optimizer, steps, batches, loss });
 *   // `batches` on the first stage only, `loss` on the last stage only.
 *
 * One concept per module: partition/ (which layers go where, balancing), microbatch.ts (slicing a
 * mini-batch), schedule/ (the order of passes), checkpointing.ts (keep activations or re-materialise),
 * stage-compute.ts (one stage's arithmetic), stage-step.ts / run-stage.ts (a stage's loop),
 * links/ (tensors between neighbours), timeline/ (where the time went), replicas/ (pipeline + data
 * parallel). See docs/readme-parts/pipeline.md.
 */
export { PipelineError, type PipelineErrorKind } from './errors.js';
export { sequentialLayers } from './partition/sequential-layers.js';
export { balanceByCost, balanceByParameters, checkBalance, parseBalance, type Balance } from './partition/balance.js';
export { partitionModel, takeStage } from './partition/partition-model.js';
export { StageModule, type NamedWeight } from './partition/stage-module.js';
export { microBatchSizes, splitMiniBatch, type MicroBatch } from './microbatch.js';
export { stageSchedule, gpipeSchedule, oneForwardOneBackwardSchedule, peakInFlight, theoreticalBubble, SCHEDULE_KINDS, type ScheduleKind, type StageOp } from './schedule/schedule.js';
export { runPipelineStage, type BatchSource, type PipelineScheduleOptions, type PipelineStageOptions, type PipelineStageResult, type StageStepReport } from './run-stage.js';
export type { LossSpec } from './stage-compute.js';
export { runLocalPipeline, type LocalPipelineOptions, type LocalPipelineResult } from './local-pipeline.js';
export { localLinkPair } from './links/local-link.js';
export type { NeighbourLink, StageNeighbours, TensorTag } from './links/neighbour-link.js';
export { Timeline, type Span, type SpanKind, type TimelineData } from './timeline/timeline.js';
export { toChromeTrace, type ChromeTrace } from './timeline/chrome-trace.js';
export { summarizeBubble, type BubbleSummary, type StageTimeShare } from './timeline/bubble.js';
export { ringGradientAverager, type GradientAverager } from './replicas/replica-gradients.js';
export { StageNode, stageMessages, type JoinedStage, type StageAddress, type StageNodeOptions } from './links/stage-node.js';
export { transportNeighbourLink, DEFAULT_CHUNK_BYTES, type TransportNeighbourOptions } from './links/transport-link.js';
export { replicasFinished } from './replicas/replica-gradients.js';
export { launchStages, type LaunchStagesOptions, type StageOutcome } from './launch/launch-stages.js';
export { joinPipelineFromLauncher, placeFromEnv, type LaunchedStage } from './launch/join-from-launcher.js';
export { pipelineJobSchema, type PipelineJob, type PipelineJobInput, type StageRunReport } from './launch/pipeline-job.js';
export { balanceByTime } from './partition/balance.js';
export { planBalance, type BalancePlan, type BalanceRule } from './partition/plan-balance.js';
