// Cache-friendly matrix transpose, used to hand XNNPACK operands it can read without a
// transpose flag.

/** Tile edge: a 32×32 float tile of source and destination (8 KiB) stays in L1 together. */
const TILE = 32;

/**
 * dst[dstOffset + c*rows + r] = src[srcOffset + r*cols + c] for the row-major [rows, cols]
 * matrix at srcOffset. Walking tile by tile keeps both the strided reads and the strided
 * writes inside a few cache lines, where a plain double loop misses on every write once a
 * column no longer fits in cache.
 */
export function transposeInto(src: Float32Array, srcOffset: number, rows: number, cols: number, dst: Float32Array, dstOffset: number): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        let from = srcOffset + r * cols + c0;
        let to = dstOffset + c0 * rows + r;
        for (let c = c0; c < c1; c++, from++, to += rows) dst[to] = src[from]!;
      }
    }
  }
}
