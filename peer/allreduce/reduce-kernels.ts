/**
 * The element-wise loops of the ring, unrolled by 4: plain JS adds about 1 G elements/s this way on
 * this machine (DESIGN.md §3), fast enough that the reduction hides behind the transfer.
 */

/** dst[i] += src[i] for i < src.length. */
export function addInto(dst: Float32Array, src: Float32Array): void {
  const n = src.length;
  const tail = n & 3;
  let i = 0;
  for (; i < n - tail; i += 4) {
    dst[i] = dst[i]! + src[i]!;
    dst[i + 1] = dst[i + 1]! + src[i + 1]!;
    dst[i + 2] = dst[i + 2]! + src[i + 2]!;
    dst[i + 3] = dst[i + 3]! + src[i + 3]!;
  }
  for (; i < n; i++) dst[i] = dst[i]! + src[i]!;
}

/** values[i] *= factor. */
export function scaleInPlace(values: Float32Array, factor: number): void {
  const n = values.length;
  for (let i = 0; i < n; i++) values[i] = values[i]! * factor;
}
