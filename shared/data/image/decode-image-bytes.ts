import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** Decoded pixels, bytes in height × width × channels order. */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];
/** A guard against decompression bombs: refuse images over this many megapixels. */
const MAX_MEGAPIXELS = 64;

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

/**
 * PNG (pngjs) or JPEG (jpeg-js), told apart by their magic bytes rather than the file name, to
 * 1 (luminance) or 3 (RGB) channels. Throws a plain Error saying what is wrong; the caller adds the file.
 */
export function decodeImageBytes(bytes: Uint8Array, channels: 1 | 3): RawImage {
  let rgba: Uint8Array;
  let width: number;
  let height: number;
  if (startsWith(bytes, PNG_MAGIC)) {
    const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    ({ width, height } = png);
    rgba = png.data;
  } else if (startsWith(bytes, JPEG_MAGIC)) {
    const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_MEGAPIXELS });
    ({ width, height } = decoded);
    rgba = decoded.data;
  } else {
    throw new Error(`not a PNG or JPEG file (starts with bytes ${[...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ') || 'nothing: it is empty'})`);
  }
  if (width * height > MAX_MEGAPIXELS * 1e6) throw new Error(`${width}×${height} is larger than the ${MAX_MEGAPIXELS}-megapixel limit`);
  return { data: fromRgba(rgba, width * height, channels), height, width, channels };
}

function fromRgba(rgba: Uint8Array, pixels: number, channels: 1 | 3): Uint8Array {
  const out = new Uint8Array(pixels * channels);
  if (channels === 3) {
    for (let p = 0; p < pixels; p++) {
      out[p * 3] = rgba[p * 4]!;
      out[p * 3 + 1] = rgba[p * 4 + 1]!;
      out[p * 3 + 2] = rgba[p * 4 + 2]!;
    }
  } else {
    // ITU-R BT.601 luma, the weights PIL's convert('L') uses.
    for (let p = 0; p < pixels; p++) out[p] = Math.round(0.299 * rgba[p * 4]! + 0.587 * rgba[p * 4 + 1]! + 0.114 * rgba[p * 4 + 2]!);
  }
  return out;
}
