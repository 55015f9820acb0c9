import { z } from 'zod';

/**
 * `training-state.json` of a checkpoint: everything besides the tensors that is needed to continue
 * exactly where training stopped. The only randomness in a run is the weight initialisation
 * (seed) and the per-epoch shuffle, a pure function of (seed, data epoch): together with the data
 * position that is the whole RNG state.
 */
export const trainingStateRecordSchema = z.object({
  step: z.number().int().min(0),
  totalSteps: z.number().int().min(0),
  /** Data epoch (passes over the training set) the next step belongs to. */
  epoch: z.number().int().min(0),
  /**
   * Next sample of the global epoch order: where the data iterator continues. As the peer's
   * iterator reported it, with `pipeline` describing its order (source, shuffle, batch); a resume
   * into a pipeline that would order samples differently is refused. Older checkpoints carry a
   * position derived from the step, without `pipeline`.
   */
  dataPosition: z.object({ epoch: z.number().int().min(0), index: z.number().int().min(0), pipeline: z.string().optional() }),
  rng: z.object({ algorithm: z.string(), seed: z.number().int(), shuffleEpoch: z.number().int().min(0) }),
  /** Membership epoch and world size when it was taken (for the record; resuming may use others). */
  membershipEpoch: z.number().int().min(0),
  worldSize: z.number().int().min(1),
  loss: z.number().nullable(),
  job: z.record(z.string(), z.unknown()),
  savedAt: z.string(),
});

export type TrainingStateRecord = z.infer<typeof trainingStateRecordSchema>;

/**
 * The record with the data position as the uploading peer's iterator reported it, when it did
 * (the record's own is derived from the step).
 */
export function withReportedPosition(record: TrainingStateRecord, reported: TrainingStateRecord['dataPosition'] | undefined): TrainingStateRecord {
  if (!reported) return record;
  return { ...record, epoch: reported.epoch, dataPosition: reported, rng: { ...record.rng, shuffleEpoch: reported.epoch } };
}
