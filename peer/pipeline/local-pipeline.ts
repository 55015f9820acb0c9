import type * as tf from '@tensorflow/tfjs';
import { localLinkPair } from './links/local-link.js';
import type { NeighbourLink, StageNeighbours } from './links/neighbour-link.js';
import type { Balance } from './partition/balance.js';
import { partitionModel } from './partition/partition-model.js';
import { runPipelineStage, type BatchSource, type PipelineScheduleOptions, type PipelineStageResult } from './run-stage.js';
import type { LossSpec } from './stage-compute.js';
import { Timeline, type TimelineData } from './timeline/timeline.js';

export interface LocalPipelineOptions {
  model: tf.LayersModel;
  balance: Balance;
  schedule: PipelineScheduleOptions;
  batchSize: number;
  steps: number;
  batches: BatchSource;
  /** Each stage gets its own optimizer over its own variables, as it would on its own peer. */
  createOptimizer(): tf.Optimizer;
  loss: LossSpec;
  recordTimeline?: boolean;
  receiveTimeoutMs?: number;
}

export interface LocalPipelineResult {
  /** Mean loss of every mini-batch. */
  losses: number[];
  stages: PipelineStageResult[];
  timelines: TimelineData[];
}

/**
 * All stages of a pipeline in this process, joined by in-memory links: the same stage code as across
 * peers, without the network. The model's own weights are trained (stages share its layers). Stages
 * interleave on the event loop, so this checks the schedule and the arithmetic, not the speed.
 */
export async function runLocalPipeline(options: LocalPipelineOptions): Promise<LocalPipelineResult> {
  const stages = partitionModel(options.model, options.balance);
  const neighbours: StageNeighbours[] = stages.map(() => ({}));
  const links: NeighbourLink[] = [];
  for (let s = 0; s + 1 < stages.length; s++) {
    const [forward, backward] = localLinkPair([`stage ${s}`, `stage ${s + 1}`]);
    neighbours[s]!.next = forward;
    neighbours[s + 1]!.previous = backward;
    links.push(forward, backward);
  }
  const timelines = stages.map(
    (stage) =>
      new Timeline({ stage: stage.index, stages: stages.length, replica: 0, microBatches: options.schedule.microBatches, schedule: options.schedule.kind ?? 'gpipe' }),
  );
  const optimizers = stages.map(() => options.createOptimizer());
  try {
    const results = await Promise.all(
      stages.map((stage, s) =>
        runPipelineStage({
          stage,
          stages: stages.length,
          neighbours: neighbours[s]!,
          schedule: options.schedule,
          batchSize: options.batchSize,
          optimizer: optimizers[s]!,
          steps: options.steps,
          ...(s === 0 ? { batches: options.batches } : {}),
          ...(s === stages.length - 1 ? { loss: options.loss } : {}),
          ...(options.recordTimeline ? { timeline: timelines[s]! } : {}),
          ...(options.receiveTimeoutMs ? { receiveTimeoutMs: options.receiveTimeoutMs } : {}),
        }).catch((error: unknown) => {
          // One stage failing must not leave the others waiting for it until their timeouts.
          for (const link of links) link.close(`stage ${s} failed: ${(error as Error).message}`);
          throw error;
        }),
      ),
    );
    return {
      losses: results[results.length - 1]!.losses,
      stages: results,
      timelines: options.recordTimeline ? timelines.map((t) => t.toJSON()) : [],
    };
  } finally {
    for (const optimizer of optimizers) optimizer.dispose();
  }
}
