/**
 * The three products of PowerSGD, in plain loops over row-major float32 matrices. With a rank of a
 * few columns they are single passes over M; the tfjs-wasm matMul took 10–570 ms for the MLP's shapes
 * (its P·Qᵀ with k = 4 is pathological). Rank 4, the default, has unrolled loops with the four
 * accumulators in locals (≈ 6× faster in V8 than the generic inner loop); other ranks use the generic
 * loops. Accumulation is in float64; both paths give the same sums up to float64 rounding.
 */

/** out (rows×rank) = M (rows×cols) · Q (cols×rank). */
export function multiplyMQ(m: Float32Array, rows: number, cols: number, q: Float32Array, rank: number, out: Float32Array): void {
  if (rank === 4) {
    for (let i = 0; i < rows; i++) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      const row = i * cols;
      for (let j = 0; j < cols; j++) {
        const v = m[row + j]!;
        const qj = j * 4;
        s0 += v * q[qj]!;
        s1 += v * q[qj + 1]!;
        s2 += v * q[qj + 2]!;
        s3 += v * q[qj + 3]!;
      }
      out[i * 4] = s0;
      out[i * 4 + 1] = s1;
      out[i * 4 + 2] = s2;
      out[i * 4 + 3] = s3;
    }
    return;
  }
  const sums = new Float64Array(rank);
  for (let i = 0; i < rows; i++) {
    sums.fill(0);
    const row = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = m[row + j]!;
      const qj = j * rank;
      for (let k = 0; k < rank; k++) sums[k]! += v * q[qj + k]!;
    }
    for (let k = 0; k < rank; k++) out[i * rank + k] = sums[k]!;
  }
}

/** out (cols×rank) = Mᵀ · P, with M rows×cols and P rows×rank. */
export function multiplyMtP(m: Float32Array, rows: number, cols: number, p: Float32Array, rank: number, out: Float32Array): void {
  const sums = new Float64Array(cols * rank);
  if (rank === 4) {
    for (let i = 0; i < rows; i++) {
      const row = i * cols;
      const p0 = p[i * 4]!;
      const p1 = p[i * 4 + 1]!;
      const p2 = p[i * 4 + 2]!;
      const p3 = p[i * 4 + 3]!;
      for (let j = 0; j < cols; j++) {
        const v = m[row + j]!;
        const sj = j * 4;
        sums[sj] = sums[sj]! + v * p0;
        sums[sj + 1] = sums[sj + 1]! + v * p1;
        sums[sj + 2] = sums[sj + 2]! + v * p2;
        sums[sj + 3] = sums[sj + 3]! + v * p3;
      }
    }
    for (let x = 0; x < sums.length; x++) out[x] = sums[x]!;
    return;
  }
  for (let i = 0; i < rows; i++) {
    const row = i * cols;
    const pi = i * rank;
    for (let j = 0; j < cols; j++) {
      const v = m[row + j]!;
      const sj = j * rank;
      for (let k = 0; k < rank; k++) sums[sj + k]! += v * p[pi + k]!;
    }
  }
  for (let x = 0; x < sums.length; x++) out[x] = sums[x]!;
}

/**
 * PowerSGD's last step in one pass: A = P·Qᵀ (rows×cols); error = M − share·A; M = A.
 * `m` holds M (with last step's error already added) and receives A.
 */
export function applyLowRank(m: Float32Array, error: Float32Array, p: Float32Array, q: Float32Array, rows: number, cols: number, rank: number, share: number): void {
  if (rank === 4) {
    for (let i = 0; i < rows; i++) {
      const row = i * cols;
      const p0 = p[i * 4]!;
      const p1 = p[i * 4 + 1]!;
      const p2 = p[i * 4 + 2]!;
      const p3 = p[i * 4 + 3]!;
      for (let j = 0; j < cols; j++) {
        const qj = j * 4;
        const approximation = Math.fround(p0 * q[qj]! + p1 * q[qj + 1]! + p2 * q[qj + 2]! + p3 * q[qj + 3]!);
        error[row + j] = m[row + j]! - share * approximation;
        m[row + j] = approximation;
      }
    }
    return;
  }
  for (let i = 0; i < rows; i++) {
    const row = i * cols;
    const pi = i * rank;
    for (let j = 0; j < cols; j++) {
      const qj = j * rank;
      let a = 0;
      for (let k = 0; k < rank; k++) a += p[pi + k]! * q[qj + k]!;
      const approximation = Math.fround(a);
      error[row + j] = m[row + j]! - share * approximation;
      m[row + j] = approximation;
    }
  }
}
