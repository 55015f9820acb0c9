import { PipelineError } from '../errors.js';

/**
 * The order in which one stage runs the forward and backward passes of a mini-batch's micro-batches.
 * Each stage follows its own list; the neighbours' lists agree on the order in which activations and
 * gradients cross every link, so stages only ever wait for data that is on its way.
 */
export interface StageOp {
  kind: 'forward' | 'backward';
  micro: number;
}

export type ScheduleKind = 'gpipe' | '1f1b';
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['gpipe', '1f1b'];

export interface SchedulePosition {
  stage: number;
  stages: number;
  microBatches: number;
}

/**
 * GPipe: all forwards, then all backwards in reverse (the last micro-batch's activations are the
 * freshest). Every stage holds the state of all M micro-batches at the turn.
 */
export function gpipeSchedule({ microBatches }: SchedulePosition): StageOp[] {
  const ops: StageOp[] = [];
  for (let m = 0; m < microBatches; m++) ops.push({ kind: 'forward', micro: m });
  for (let m = microBatches - 1; m >= 0; m--) ops.push({ kind: 'backward', micro: m });
  return ops;
}

/**
 * 1F1B (PipeDream-Flush): stage s runs K − s − 1 warm-up forwards, then alternates one forward and one
 * backward, then drains the remaining backwards. Same bubble as GPipe, but stage s never holds more
 * than K − s micro-batches' state instead of M.
 */
export function oneForwardOneBackwardSchedule({ stage, stages, microBatches }: SchedulePosition): StageOp[] {
  const warmUp = Math.min(stages - stage - 1, microBatches);
  const ops: StageOp[] = [];
  let forward = 0;
  let backward = 0;
  while (forward < warmUp) ops.push({ kind: 'forward', micro: forward++ });
  while (forward < microBatches) {
    ops.push({ kind: 'forward', micro: forward++ });
    ops.push({ kind: 'backward', micro: backward++ });
  }
  while (backward < microBatches) ops.push({ kind: 'backward', micro: backward++ });
  return ops;
}

export function stageSchedule(kind: ScheduleKind, position: SchedulePosition): StageOp[] {
  const { stage, stages, microBatches } = position;
  if (!Number.isInteger(stages) || stages < 1 || !Number.isInteger(stage) || stage < 0 || stage >= stages) {
    throw new PipelineError('usage', `stage must be an integer in [0, ${stages}), got ${stage}`);
  }
  if (!Number.isInteger(microBatches) || microBatches < 1) {
    throw new PipelineError('usage', `the number of micro-batches must be a positive integer, got ${microBatches}`);
  }
  switch (kind) {
    case 'gpipe':
      return gpipeSchedule(position);
    case '1f1b':
      return oneForwardOneBackwardSchedule(position);
    default:
      throw new PipelineError('usage', `unknown schedule '${String(kind)}': choose ${SCHEDULE_KINDS.join(' or ')}`);
  }
}

/** Most micro-batches whose forward has run but whose backward has not, at any point of `ops`. */
export function peakInFlight(ops: readonly StageOp[]): number {
  let inFlight = 0;
  let peak = 0;
  for (const op of ops) {
    inFlight += op.kind === 'forward' ? 1 : -1;
    peak = Math.max(peak, inFlight);
  }
  return peak;
}

/** GPipe's bubble with equal stages and free communication: (K − 1) / (M + K − 1). */
export function theoreticalBubble(stages: number, microBatches: number): number {
  return (stages - 1) / (microBatches + stages - 1);
}
