/**
 * IEEE 754 binary16 conversion for typed arrays (Node 20 has no Float16Array). Encoding rounds to
 * nearest, ties to even, as hardware does; decoding is one lookup in a 65,536-entry table.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Half-precision bits of one float32 given as its raw bits. */
export function halfBitsFromFloatBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00); // NaN stays NaN, ±Inf
  if (abs >= 0x477ff000) return sign | 0x7c00; // ≥ 65520 rounds past the largest half (65504)
  if (abs >= 0x38800000) {
    // Normal half: rebias the exponent, round the 13 dropped mantissa bits to nearest even.
    const rounded = abs + 0xfff + ((abs >>> 13) & 1);
    return sign | ((rounded - 0x38000000) >>> 13);
  }
  if (abs < 0x33000000) return sign; // below half the smallest subnormal (2^-25): zero
  // Subnormal half: value = m · 2^(e−150), in units of 2^-24 that is m >> (126 − e).
  const exponent = abs >>> 23;
  const mantissa = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exponent;
  let half = mantissa >>> shift;
  const remainder = mantissa & ((1 << shift) - 1);
  const midpoint = 1 << (shift - 1);
  if (remainder > midpoint || (remainder === midpoint && (half & 1) === 1)) half++;
  return sign | half;
}

/** float32 value of half-precision bits. */
export function floatFromHalfBits(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Every half value as float32: decoding is `table[bits]`. */
export const HALF_TO_FLOAT: Float32Array = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) table[h] = floatFromHalfBits(h);
  return table;
})();

/** dst[i] = half(src[i]). */
export function encodeHalf(src: Float32Array, dst: Uint16Array): void {
  // Reading the float bits through a Uint32Array view of the same memory avoids a per-element DataView.
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = halfBitsFromFloatBits(bits[i]!);
}

/** The float32 value closest to `value` that a half can hold (for scalars, tests). */
export function roundToHalf(value: number): number {
  f32[0] = value;
  return HALF_TO_FLOAT[halfBitsFromFloatBits(u32[0]!)]!;
}
