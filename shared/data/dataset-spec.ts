import { z } from 'zod';
import { formatIssues } from '../job/schema.js';

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

const objectSchemas = {
  mnist: z.object({ kind: z.literal('mnist'), ...pipelineFields, parallel }).strict(),
  csv: z
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
  jsonl: z
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
  'image-folder': z
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
};

/** Plainer words than zod's where a field takes one of a few shapes. */
const HINTS: Record<string, string> = {
  label: 'must be a column name or a 0-based column index (jsonl: a key)',
  features: 'must be a list of column names or indices (jsonl: a list of keys, or one key holding an array)',
  imageSize: 'must be [height, width] in pixels, e.g. [28, 28]',
  channels: 'must be 1 (greyscale) or 3 (RGB)',
};

type ObjectSpec = { [K in keyof typeof objectSchemas]: z.infer<(typeof objectSchemas)[K]> }[keyof typeof objectSchemas];
const KINDS = Object.keys(objectSchemas) as (keyof typeof objectSchemas)[];

/**
 * "mnist" or one of the objects, checked by hand rather than as a zod union so that a problem is
 * reported on the field it concerns (`dataset.label: …`), not as the union's "invalid input".
 */
export const datasetSchema = z.unknown().transform((value, ctx): 'mnist' | ObjectSpec => {
  if (value === 'mnist') return value;
  const kind = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { kind?: unknown }).kind : undefined;
  const schema = typeof kind === 'string' && (KINDS as string[]).includes(kind) ? objectSchemas[kind as keyof typeof objectSchemas] : undefined;
  if (!schema) {
    const what = typeof value === 'object' && value !== null ? { kind: kind ?? '(missing)' } : value;
    ctx.addIssue({ code: 'custom', message: `must be "mnist" or an object whose kind is one of ${KINDS.map((k) => JSON.stringify(k)).join(', ')} (see docs/data.md)`, input: what });
    return z.NEVER;
  }
  const result = schema.safeParse(value, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) {
      const [text = ''] = formatIssues(new z.ZodError([{ ...issue, input: undefined }]));
      const problem = issue.input === undefined && issue.code === 'invalid_type' ? 'is required' : (HINTS[String(issue.path[0])] ?? text.slice(text.indexOf(': ') + 2));
      // An input of undefined keeps the top-level formatter from appending the whole dataset object.
      ctx.addIssue({ code: 'custom', path: issue.path, message: problem, input: issue.code === 'unrecognized_keys' ? undefined : issue.input });
    }
    return z.NEVER;
  }
  return result.data as ObjectSpec;
});

export type DatasetSpec = z.infer<typeof datasetSchema>;
