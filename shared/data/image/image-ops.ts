import type { Prng } from '../../random/prng.js';
import type { RawImage } from './decode-image-bytes.js';

/** A `height × width` window whose top-left corner is (top, left). */
export function crop(image: RawImage, top: number, left: number, height: number, width: number): RawImage {
  const { channels } = image;
  const out = new Uint8Array(height * width * channels);
  const rowBytes = width * channels;
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * channels;
    out.set(image.data.subarray(from, from + rowBytes), y * rowBytes);
  }
  return { data: out, height, width, channels };
}

/** A crop at a uniformly random position (the classic random-crop augmentation). */
export function randomCrop(image: RawImage, height: number, width: number, random: Prng): RawImage {
  return crop(image, random.nextInt(image.height - height + 1), random.nextInt(image.width - width + 1), height, width);
}

export function centerCrop(image: RawImage, height: number, width: number): RawImage {
  return crop(image, (image.height - height) >> 1, (image.width - width) >> 1, height, width);
}

/** Mirror left–right, in a new buffer. */
export function flipHorizontal(image: RawImage): RawImage {
  const { height, width, channels } = image;
  const out = new Uint8Array(image.data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * channels;
      const to = (y * width + (width - 1 - x)) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = image.data[from + c]!;
    }
  }
  return { data: out, height, width, channels };
}

/** Bilinear resize with half-pixel centres (as tf.image.resizeBilinear with halfPixelCenters). */
export function resizeBilinear(image: RawImage, height: number, width: number): RawImage {
  const { channels, data } = image;
  const out = new Uint8Array(height * width * channels);
  const scaleY = image.height / height;
  const scaleX = image.width / width;
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), image.height - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, image.height - 1);
    const fy = sy - y0;
    for (let x = 0; x < width; x++) {
      const sx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), image.width - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, image.width - 1);
      const fx = sx - x0;
      // Plain index arithmetic, no helper closure: under tsx every closure made here was also
      // named through Object.defineProperty, which cost more than the resize itself.
      const row0 = y0 * image.width;
      const row1 = y1 * image.width;
      for (let c = 0; c < channels; c++) {
        const top = data[(row0 + x0) * channels + c]! * (1 - fx) + data[(row0 + x1) * channels + c]! * fx;
        const bottom = data[(row1 + x0) * channels + c]! * (1 - fx) + data[(row1 + x1) * channels + c]! * fx;
        out[(y * width + x) * channels + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { data: out, height, width, channels };
}
