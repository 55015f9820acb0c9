// im2col for the filter gradient, written directly in transposed form.
import { validOutputRange, type ConvGeometry } from './conv-geometry.js';

/**
 * Fills colT[k, m] (row-major, K = FH*FW*CI rows, M = B*OH*OW columns) with
 * x[b, oh*sh - padTop + fh*dh, ow*sw - padLeft + fw*dw, ci], where k = (fh*FW + fw)*CI + ci
 * and m = (b*OH + oh)*OW + ow; taps that fall into the padding are 0.
 *
 * Transposed because then dW[K, CO] = colT · dy[M, CO] needs no transpose flag, which keeps
 * the wasm BatchMatMul on its XNNPACK path. Every element is written exactly once (the heap
 * buffer arrives uninitialised). Loop order: the innermost loop writes one contiguous run of
 * colT while reading a single input row, which stays in L1.
 */
export function fillTransposedIm2col(x: Float32Array, g: ConvGeometry, colT: Float32Array): void {
  const { batch, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = g;
  const columns = batch * outHeight * outWidth;
  const xRowStride = inWidth * inChannels;
  const xBatchStride = inHeight * xRowStride;
  const xStep = strideWidth * inChannels;

  for (let fh = 0; fh < g.filterHeight; fh++) {
    const rowTap = fh * g.dilationHeight - g.padTop;
    for (let fw = 0; fw < g.filterWidth; fw++) {
      const colTap = fw * g.dilationWidth - g.padLeft;
      const [owFirst, owEnd] = validOutputRange(colTap, strideWidth, inWidth, outWidth);
      const firstRow = (fh * g.filterWidth + fw) * inChannels;
      for (let b = 0; b < batch; b++) {
        for (let oh = 0; oh < outHeight; oh++) {
          const ih = oh * strideHeight + rowTap;
          const m0 = (b * outHeight + oh) * outWidth;
          const rowInside = ih >= 0 && ih < inHeight;
          const xRow = b * xBatchStride + ih * xRowStride;
          for (let ci = 0; ci < inChannels; ci++) {
            const dst = (firstRow + ci) * columns + m0;
            if (!rowInside) {
              colT.fill(0, dst, dst + outWidth);
              continue;
            }
            for (let ow = 0; ow < owFirst; ow++) colT[dst + ow] = 0;
            let src = xRow + (owFirst * strideWidth + colTap) * inChannels + ci;
            for (let ow = owFirst; ow < owEnd; ow++, src += xStep) colT[dst + ow] = x[src]!;
            for (let ow = owEnd; ow < outWidth; ow++) colT[dst + ow] = 0;
          }
        }
      }
    }
  }
}
