import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * The manifest is the commit record of a checkpoint: written last, it lists every file with its
 * size and sha256, so a truncated file, a flipped byte or a missing file is detected on load.
 */
export const MANIFEST_FORMAT = 'ringpipe-checkpoint/1';

const fileRecord = z.object({ bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

export const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    step: z.number().int().min(0),
    createdAt: z.string(),
    files: z.record(z.string(), fileRecord),
  })
  .strict();

export type Manifest = z.infer<typeof manifestSchema>;

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function buildManifest(step: number, files: readonly { name: string; data: Uint8Array }[]): Manifest {
  return {
    format: MANIFEST_FORMAT,
    step,
    createdAt: new Date().toISOString(),
    files: Object.fromEntries(files.map((file) => [file.name, { bytes: file.data.byteLength, sha256: sha256(file.data) }])),
  };
}
