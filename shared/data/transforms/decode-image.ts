import { readFileSync } from 'node:fs';
import { decodeImageBytes } from '../image/decode-image-bytes.js';
import { DataError } from '../pipeline/data-error.js';
import type { LabelledImage } from '../pipeline/source.js';
import { defineTransform } from '../pipeline/transform.js';
import type { ImageFileRef } from '../sources/image-folder-source.js';

export type DecodeImageOptions = {
  /** 1 for greyscale (luma), 3 for RGB. Default 3. */
  channels?: 1 | 3;
};

/** Reads and decodes an image file (PNG or JPEG). Runs in the worker when the map is parallel, so file I/O leaves the trainer's thread too. */
export const decodeImage = defineTransform(import.meta.url, 'decodeImage', (ref: ImageFileRef, options: DecodeImageOptions): LabelledImage => {
  let bytes: Buffer;
  try {
    bytes = readFileSync(ref.file);
  } catch (err) {
    throw new DataError(`${ref.file}: cannot read the image (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
  }
  try {
    return { ...decodeImageBytes(bytes, options.channels ?? 3), label: ref.label };
  } catch (err) {
    throw new DataError(`${ref.file}: cannot decode the image (${(err as Error).message}). Replace or remove the file, or map with { onError: 'skip' } to skip and count bad files.`);
  }
});
