import { z } from 'zod';

/**
 * The job file's `dataset`: built-in MNIST, or the user's own data as a CSV file, a JSON Lines file
 * or a folder of images (one sub-folder per class). Paths are read on every peer, relative to the
 * peer's working directory, so each peer needs the file at that path. Without `test`, a fixed
 * `testFraction` of the training file is held out for the final evaluation (the same samples on
 * every peer and every run).
 */
const pipelineFields = {
  /** Batches kept ready ahead of the trainer. */
  prefetch: z.number().int().min(0).max(64).default(2),
};

/** Worker threads decoding samples (map stages); 0 decodes in the trainer's thread. */
const parallel = z.number().int().min(0).max(16).optional();

const fileFields = {
  /** Training data (file or folder). */
  train: z.string().min(1),
  /** Test data in the same format; default: hold out `testFraction` of `train`. */
  test: z.string().min(1).optional(),
  testFraction: z.number().gt(0).max(0.9).default(0.1),
  ...pipelineFields,
};

const column = z.union([z.string().min(1), z.number().int().min(0)]);
/** Class names in class-index order; default: whole-number labels are the indices, other labels sorted. */
const classes = z.array(z.string()).min(2).max(100_000).optional();
const onBad = z.enum(['error', 'skip']).default('error');

export const datasetSchema = z.union([
  z.literal('mnist'),
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('mnist'), ...pipelineFields, parallel }).strict(),
    z
      .object({
        kind: z.literal('csv'),
        ...fileFields,
        /** Label column: its header name, or its 0-based index. */
        label: column,
        /** Feature columns; default: every column except the label. */
        features: z.array(column).min(1).optional(),
        classes,
        header: z.boolean().default(true),
        delimiter: z.string().length(1).default(','),
        onBadRow: onBad,
      })
      .strict(),
    z
      .object({
        kind: z.literal('jsonl'),
        ...fileFields,
        label: z.string().min(1),
        /** Keys holding numbers, or one key holding a numeric array. */
        features: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
        classes,
        onBadRow: onBad,
      })
      .strict(),
    z
      .object({
        kind: z.literal('image-folder'),
        ...fileFields,
        /** Default 2. */
        parallel,
        /** Every image is resized to [height, width] (bilinear). */
        imageSize: z.tuple([z.number().int().min(1).max(4096), z.number().int().min(1).max(4096)]),
        /** 1: greyscale, 3: RGB. */
        channels: z.union([z.literal(1), z.literal(3)]).default(1),
        /** An undecodable file: stop naming it (default), or skip it and count. */
        onBadFile: onBad,
      })
      .strict(),
  ]),
]);

export type DatasetSpec = z.infer<typeof datasetSchema>;
export type DatasetSpecInput = z.input<typeof datasetSchema>;

/** One short line naming the dataset, for logs and the dashboard. */
export function describeDataset(spec: DatasetSpec): string {
  if (spec === 'mnist' || spec.kind === 'mnist') return 'mnist';
  return `${spec.kind}:${spec.train}${spec.test ? ` (test ${spec.test})` : ` (test: ${spec.testFraction} held out)`}`;
}
