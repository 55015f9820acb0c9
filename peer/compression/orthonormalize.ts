/**
 * Modified Gram–Schmidt on the columns of a row-major rows×cols matrix, in place. A column with
 * (almost) no norm left becomes zero rather than NaN. Deterministic: every rank, given the same
 * bits, produces the same bits, which keeps PowerSGD replicas identical.
 */
export function orthonormalizeColumns(matrix: Float32Array, rows: number, cols: number): void {
  for (let j = 0; j < cols; j++) {
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let i = 0; i < rows; i++) dot += matrix[i * cols + j]! * matrix[i * cols + k]!;
      for (let i = 0; i < rows; i++) matrix[i * cols + j] = matrix[i * cols + j]! - dot * matrix[i * cols + k]!;
    }
    let norm = 0;
    for (let i = 0; i < rows; i++) norm += matrix[i * cols + j]! ** 2;
    norm = Math.sqrt(norm);
    const scale = norm > 1e-12 ? 1 / norm : 0;
    for (let i = 0; i < rows; i++) matrix[i * cols + j] = matrix[i * cols + j]! * scale;
  }
}
