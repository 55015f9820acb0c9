import { z } from 'zod';
import { COMPRESSIONS } from '../../peer/compression/create-reducer.js';
import { datasetSchema } from '../../shared/data/dataset-spec.js';

/**
 * Job-file fields of the data-parallel session: what it trains on and how gradients travel.
 * See docs/data.md (datasets) and docs/allreduce.md (compression, buckets).
 */
export const dataParallelFields = {
  /** "mnist", or { kind: "csv" | "jsonl" | "image-folder", train, … } (shared/data/dataset-spec.ts). */
  dataset: datasetSchema.default('mnist'),
  /** Gradients on the wire: float32, half floats, or PowerSGD low rank (both with error feedback). */
  compress: z.enum(COMPRESSIONS).default('none'),
  /** Reduce gradients in buckets of this many MiB while later ones are still copied out (none, fp16); absent: one fused buffer. */
  bucketMiB: z.number().positive().max(1024).optional(),
  /** Rank of PowerSGD's approximation (compress "powersgd"; default 4). */
  powerSgdRank: z.number().int().min(1).max(64).optional(),
};

/** Problems between these fields and others. */
export function dataParallelProblems(input: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (input.powerSgdRank !== undefined && input.compress !== 'powersgd') {
    problems.push(`powerSgdRank: applies only with compress "powersgd", got compress ${JSON.stringify(input.compress ?? 'none')}`);
  }
  if (input.bucketMiB !== undefined && input.compress === 'powersgd') {
    problems.push('bucketMiB: PowerSGD compresses the whole gradient at once and does not use buckets; remove bucketMiB or use compress "none" or "fp16"');
  }
  return problems;
}
