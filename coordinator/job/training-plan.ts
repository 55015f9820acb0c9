/**
 * Step arithmetic shared by the coordinator and every peer. Training is defined by the *global*
 * step: step s (1-based) trains on global batch s−1 of the epoch order, whatever the number of
 * peers. Each peer takes a contiguous slice of that batch, so when peers come and go the data
 * stream, the global batch size and hence the trajectory stay the same — only who computes which
 * slice changes.
 */
export interface TrainingPlan {
  batchSize: number;
  trainSamples: number;
  /** Full global batches per pass over the data (the partial last batch is dropped). */
  batchesPerEpoch: number;
  totalSteps: number;
}

export function trainingPlan(job: { batchSize: number; epochs: number; maxSteps: number }, trainSamples: number): TrainingPlan {
  const batchesPerEpoch = Math.floor(trainSamples / job.batchSize);
  if (batchesPerEpoch < 1) throw new Error(`batchSize ${job.batchSize} is larger than the ${trainSamples} training samples: use a batchSize of at most ${trainSamples}, or more data`);
  const epochSteps = Math.max(1, Math.round(job.epochs * batchesPerEpoch));
  const totalSteps = job.maxSteps > 0 ? Math.min(job.maxSteps, epochSteps) : epochSteps;
  return { batchSize: job.batchSize, trainSamples, batchesPerEpoch, totalSteps };
}

/** Which global batch step `step` (1-based) trains on. */
export function globalBatchOf(plan: TrainingPlan, step: number): { epoch: number; batch: number } {
  return { epoch: Math.floor((step - 1) / plan.batchesPerEpoch), batch: (step - 1) % plan.batchesPerEpoch };
}

/** The data-iterator position after `step` steps: the next sample of the epoch order to use. */
export function dataPositionAfter(plan: TrainingPlan, step: number): { epoch: number; index: number } {
  return { epoch: Math.floor(step / plan.batchesPerEpoch), index: (step % plan.batchesPerEpoch) * plan.batchSize };
}

/** Rank `rank`'s contiguous part [start, end) of a global batch of `batchSize` among `worldSize` peers. */
export function sliceOfBatch(batchSize: number, rank: number, worldSize: number): { start: number; end: number } {
  return { start: Math.floor((rank * batchSize) / worldSize), end: Math.floor(((rank + 1) * batchSize) / worldSize) };
}
