// col2im for the input gradient: scatter-adds patch columns back onto the image.
import { validOutputRange, type ConvGeometry } from './conv-geometry.js';

/**
 * dx[b, oh*sh - padTop + fh*dh, ow*sw - padLeft + fw*dw, ci] += col[m, k] for every output
 * position m = (b*OH + oh)*OW + ow and tap k = (fh*FW + fw)*CI + ci; taps that fall into the
 * padding are dropped. `col` is row-major [M, K]; `dx` must start zeroed.
 */
export function accumulateCol2im(col: Float32Array, g: ConvGeometry, dx: Float32Array): void {
  const { batch, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = g;
  const taps = g.filterHeight * g.filterWidth * inChannels;
  const dxRowStride = inWidth * inChannels;
  const dxBatchStride = inHeight * dxRowStride;

  for (let b = 0; b < batch; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const mRow = (b * outHeight + oh) * outWidth;
      for (let fh = 0; fh < g.filterHeight; fh++) {
        const ih = oh * strideHeight + fh * g.dilationHeight - g.padTop;
        if (ih < 0 || ih >= inHeight) continue;
        const dxRow = b * dxBatchStride + ih * dxRowStride;
        for (let fw = 0; fw < g.filterWidth; fw++) {
          const colTap = fw * g.dilationWidth - g.padLeft;
          const [owFirst, owEnd] = validOutputRange(colTap, strideWidth, inWidth, outWidth);
          const tapBase = (fh * g.filterWidth + fw) * inChannels;
          for (let ow = owFirst; ow < owEnd; ow++) {
            const src = (mRow + ow) * taps + tapBase;
            const dst = dxRow + (ow * strideWidth + colTap) * inChannels;
            for (let ci = 0; ci < inChannels; ci++) dx[dst + ci] = dx[dst + ci]! + col[src + ci]!;
          }
        }
      }
    }
  }
}
