// Shapes of a (batched, broadcast, optionally transposed) matrix product, worked out once.
import * as tf from '@tensorflow/tfjs';

export interface MatMulPlan {
  /** Rows of the product (M), the summed dimension (K) and columns of the product (N). */
  rows: number;
  inner: number;
  cols: number;
  /** Shape of the result: the broadcast batch dimensions, then [M, N]. */
  outShape: number[];
  /** Number of [M, N] products (the size of the broadcast batch dimensions). */
  batch: number;
  /** Number of matrices stored in a and in b. */
  aMatrices: number;
  bMatrices: number;
  /** For each product, the index of the a and b matrix it reads (broadcasting repeats them). */
  aMatrixOf: Int32Array;
  bMatrixOf: Int32Array;
}

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Index into an operand's own batch dimensions for each flat index of the broadcast batch shape. */
function broadcastSourceIndex(outBatch: readonly number[], operandBatch: readonly number[]): Int32Array {
  const count = product(outBatch);
  const indices = new Int32Array(count);
  const padded = [...new Array<number>(outBatch.length - operandBatch.length).fill(1), ...operandBatch];
  for (let flat = 0; flat < count; flat++) {
    let rest = flat;
    let source = 0;
    let stride = 1;
    for (let axis = outBatch.length - 1; axis >= 0; axis--) {
      const coordinate = rest % outBatch[axis]!;
      rest = Math.floor(rest / outBatch[axis]!);
      if (padded[axis]! !== 1) source += coordinate * stride;
      stride *= padded[axis]!;
    }
    indices[flat] = source;
  }
  return indices;
}

export function planMatMul(kernelName: string, aShape: readonly number[], bShape: readonly number[], transposeA: boolean, transposeB: boolean): MatMulPlan {
  if (aShape.length < 2 || bShape.length < 2) {
    throw new Error(`${kernelName}: inputs must have rank ≥ 2, got [${aShape.join(',')}] and [${bShape.join(',')}]`);
  }
  const aLast = aShape[aShape.length - 1]!;
  const aSecondLast = aShape[aShape.length - 2]!;
  const bLast = bShape[bShape.length - 1]!;
  const bSecondLast = bShape[bShape.length - 2]!;
  const rows = transposeA ? aLast : aSecondLast;
  const innerA = transposeA ? aSecondLast : aLast;
  const innerB = transposeB ? bLast : bSecondLast;
  const cols = transposeB ? bSecondLast : bLast;
  if (innerA !== innerB) {
    throw new Error(
      `${kernelName}: inner dimensions ${innerA} and ${innerB} of [${aShape.join(',')}] and [${bShape.join(',')}] ` +
        `(transposeA=${transposeA}, transposeB=${transposeB}) must match`,
    );
  }
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  return {
    rows,
    inner: innerA,
    cols,
    outShape: [...outBatch, rows, cols],
    batch: product(outBatch),
    aMatrices: product(aBatch),
    bMatrices: product(bBatch),
    aMatrixOf: broadcastSourceIndex(outBatch, aBatch),
    bMatrixOf: broadcastSourceIndex(outBatch, bBatch),
  };
}
