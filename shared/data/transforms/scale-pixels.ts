import type { LabelledImage, Sample } from '../pipeline/source.js';
import { defineTransform } from '../pipeline/transform.js';

/** Pixel bytes to floats in [0, 1]: the `Sample` that `batch()` stacks. */
export const scalePixels = defineTransform(import.meta.url, 'scalePixels', (image: LabelledImage): Sample => {
  const x = new Float32Array(image.data.length);
  for (let i = 0; i < x.length; i++) x[i] = image.data[i]! / 255;
  return { x, label: image.label };
});
