import { centerCrop, flipHorizontal, randomCrop, resizeBilinear } from '../image/image-ops.js';
import { DataError } from '../pipeline/data-error.js';
import type { LabelledImage } from '../pipeline/source.js';
import { defineTransform } from '../pipeline/transform.js';

export type AugmentImageOptions = {
  /** Crop to [height, width], at a random position unless `randomCrop` is false (then centred). */
  crop?: [number, number];
  randomCrop?: boolean;
  /** Mirror left–right with probability ½. */
  flip?: boolean;
  /** Finally resize (bilinear) to [height, width]. */
  resize?: [number, number];
};

/** Crop → flip → resize, with randomness from the per-sample generator (same result in any thread). */
export const augmentImage = defineTransform(import.meta.url, 'augmentImage', (input: LabelledImage, options: AugmentImageOptions, ctx): LabelledImage => {
  let image = { data: input.data, height: input.height, width: input.width, channels: input.channels };
  if (options.crop) {
    const [height, width] = options.crop;
    if (height > image.height || width > image.width) {
      throw new DataError(`sample ${ctx.sampleIndex}: cannot crop ${height}×${width} out of a ${image.height}×${image.width} image. Use a smaller crop or resize first.`);
    }
    image = options.randomCrop === false ? centerCrop(image, height, width) : randomCrop(image, height, width, ctx.random);
  }
  if (options.flip && ctx.random.next() < 0.5) image = flipHorizontal(image);
  if (options.resize) image = resizeBilinear(image, options.resize[0], options.resize[1]);
  // Every branch above allocated a new buffer, but with no option set we would hand back the input's.
  return { ...image, data: image.data === input.data ? input.data.slice() : image.data, label: input.label };
});
