/**
 * The benchmark's image-folder dataset, made from MNIST so the CNN has something real to learn:
 * each digit is scaled 2× and placed at a random spot of a 64×64 RGB canvas with a noisy,
 * coloured background (noise keeps the PNGs from compressing to nothing, as photos do).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { augmentImage, Dataset, decodeImage, scalePixels, type BatchedDataset, type ImageFolderSource } from '../../shared/data/index.js';
import { resizeBilinear } from '../../shared/data/image/image-ops.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { Prng } from '../../shared/random/prng.js';

export const CANVAS = 64;

export function writeDigitImages(mnist: ImageDataset, count: number, root: string, seed = 1): number {
  const random = new Prng(seed);
  let bytes = 0;
  for (let d = 0; d < 10; d++) mkdirSync(path.join(root, String(d)), { recursive: true });
  for (let i = 0; i < count; i++) {
    const digit = resizeBilinear({ data: mnist.images.subarray(i * 784, (i + 1) * 784), height: 28, width: 28, channels: 1 }, 56, 56);
    const top = random.nextInt(CANVAS - 56 + 1);
    const left = random.nextInt(CANVAS - 56 + 1);
    const ink = [random.nextInt(256), random.nextInt(256), random.nextInt(256)];
    const png = new PNG({ width: CANVAS, height: CANVAS });
    for (let y = 0; y < CANVAS; y++) {
      for (let x = 0; x < CANVAS; x++) {
        const inside = y >= top && y < top + 56 && x >= left && x < left + 56;
        const alpha = inside ? digit.data[(y - top) * 56 + (x - left)]! / 255 : 0;
        const at = (y * CANVAS + x) * 4;
        for (let c = 0; c < 3; c++) png.data[at + c] = Math.round((1 - alpha) * random.nextInt(96) + alpha * ink[c]!);
        png.data[at + 3] = 255;
      }
    }
    const file = PNG.sync.write(png, { colorType: 2 });
    bytes += file.length;
    writeFileSync(path.join(root, String(mnist.labels[i]), `${String(i).padStart(5, '0')}.png`), file);
  }
  return bytes;
}

/**
 * The pipeline `npm run bench:ingest` measures and ingest-profile.ts profiles: decode (greyscale) →
 * random 56×56 crop + flip → resize to 28×28 → scale, batched; the maps run in `parallel` worker
 * threads (0: the caller's thread).
 */
export function digitImageBatches(source: ImageFolderSource, batchSize: number, parallel: number): BatchedDataset {
  const where = { parallel };
  return Dataset.from(source)
    .shuffle(source.size, 7)
    .map(decodeImage.with({ channels: 1 }), where)
    .map(augmentImage.with({ crop: [56, 56], flip: true, resize: [28, 28] }), { ...where, seed: 7 })
    .map(scalePixels.with({}), where)
    .batch(batchSize);
}
