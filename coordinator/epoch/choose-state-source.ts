import type { StateSource } from '../protocol/cluster-messages.js';

export interface StateChoice {
  source: StateSource;
  /** Rank that provides the state (broadcast to the others around the ring). */
  root: number;
  startStep: number;
}

/**
 * Where an epoch starts from: the newest state anyone has. Survivors of a failed epoch hold the
 * last committed step in memory (no checkpoint needed, nothing redone); a restarted coordinator or
 * an all-new set of peers starts from the newest checkpoint; otherwise from the initial weights.
 * Ties go to memory, which needs no transfer.
 */
export function chooseStateSource(committedSteps: readonly number[], checkpointStep: number | undefined): StateChoice {
  let root = 0;
  let best = -1;
  committedSteps.forEach((step, rank) => {
    if (step > best) {
      best = step;
      root = rank;
    }
  });
  const onDisk = checkpointStep ?? -1;
  if (best > 0 && best >= onDisk) return { source: 'memory', root, startStep: best };
  if (onDisk > 0) return { source: 'checkpoint', root: 0, startStep: onDisk };
  return { source: 'fresh', root: 0, startStep: 0 };
}

/**
 * Where a pipeline epoch starts from. Each stage holds only its own layers, so memory serves only
 * when every stage holds the same step (a pause, a stop); after a stage was lost or replaced, every
 * stage takes its part of the newest checkpoint; without one, fresh weights.
 */
export function chooseStageStateSource(heldSteps: readonly number[], checkpointStep: number | undefined): { source: StateSource; startStep: number } {
  const first = heldSteps[0] ?? -1;
  const onDisk = checkpointStep ?? -1;
  if (first > 0 && heldSteps.every((step) => step === first) && first >= onDisk) return { source: 'memory', startStep: first };
  if (onDisk > 0) return { source: 'checkpoint', startStep: onDisk };
  return { source: 'fresh', startStep: 0 };
}
