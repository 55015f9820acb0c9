import { describe, expect, it } from 'vitest';
import { Fp16Codec } from '../peer/compression/fp16-codec.js';
import { floatFromHalfBits, halfBitsFromFloatBits, HALF_TO_FLOAT, roundToHalf } from '../peer/compression/half-float.js';
import { Prng } from '../shared/random/prng.js';

function floatBits(value: number): number {
  return new Uint32Array(Float32Array.of(value).buffer)[0]!;
}

describe('half-precision conversion', () => {
  it('decodes every half and re-encodes it to the same bits (NaNs stay NaN)', () => {
    // Collected, then asserted once: 65,536 separate expects would take seconds.
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const value = HALF_TO_FLOAT[h]!;
      const decodedOk = value === floatFromHalfBits(h) || (Number.isNaN(value) && Number.isNaN(floatFromHalfBits(h)));
      const back = halfBitsFromFloatBits(floatBits(value));
      const encodedOk = Number.isNaN(value) ? Number.isNaN(HALF_TO_FLOAT[back]) : back === h;
      if (!decodedOk || !encodedOk) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('rounds to the nearest half, ties to even, over the normal, subnormal and overflow ranges', () => {
    const prng = new Prng(3);
    const samples = [0, -0, 1, 65504, 65519.99, 65520, 1e6, -1e6, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -26, 6e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
    for (let i = 0; i < 20_000; i++) samples.push((prng.next() - 0.5) * 2 ** (prng.nextInt(44) - 28));
    for (const sample of samples) {
      const x = Math.fround(sample);
      const h = halfBitsFromFloatBits(floatBits(x));
      const got = HALF_TO_FLOAT[h]!;
      if (Math.abs(x) >= 65520) {
        expect(got).toBe(Math.sign(x) * Infinity);
        continue;
      }
      // No other finite half is closer; on a tie the chosen one has an even mantissa.
      const error = Math.abs(got - x);
      for (const neighbour of [h - 1, h + 1]) {
        const other = HALF_TO_FLOAT[neighbour & 0xffff]!;
        if (!Number.isFinite(other) || Math.sign(other) * Math.sign(got) < 0) continue;
        const otherError = Math.abs(other - x);
        expect(error).toBeLessThanOrEqual(otherError);
        if (error === otherError) expect(h & 1).toBe(0);
      }
    }
    expect(roundToHalf(1 + 2 ** -11)).toBe(1); // tie → even mantissa
    expect(roundToHalf(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundToHalf(2 ** -25)).toBe(0);
    expect(roundToHalf(3 * 2 ** -26)).toBe(2 ** -24);
  });

  it('fp16 codec: decodeAdd/decodeCopy agree with roundTrip, also from odd byte offsets', () => {
    const codec = new Fp16Codec();
    const values = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i) * 100);
    const scratch = new Uint8Array(codec.encodedBytes(values.length));
    const encoded = codec.encode(values, scratch);
    expect(encoded.byteLength).toBe(2002);
    const odd = new Uint8Array(encoded.byteLength + 1).subarray(1);
    odd.set(encoded);
    const copied = new Float32Array(values.length);
    codec.decodeCopy(odd, copied);
    const rounded = values.slice();
    codec.roundTrip(rounded);
    expect(copied).toEqual(rounded);
    const added = Float32Array.from({ length: values.length }, () => 1);
    codec.decodeAdd(encoded, added);
    for (let i = 0; i < values.length; i++) expect(added[i]).toBe(Math.fround(1 + rounded[i]!));
  });
});
