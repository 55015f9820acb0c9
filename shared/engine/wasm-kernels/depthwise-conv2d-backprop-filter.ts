// DepthwiseConv2dNativeBackpropFilter for the wasm backend, as plain typed-array loops
// (depthwise filters are small; the work is O(B·OH·OW·FH·FW·CI·CM) multiply-adds).
import type {
  DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropFilterInputs,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs';
import { assertGradientShape, nhwcConvGeometry, validOutputRange, type ConvGeometry } from './conv-geometry.js';
import { allocateFloat32, asWasmBackend, heapFloat32 } from './wasm-backend.js';

/**
 * dW[fh, fw, ci, cm] = Σ_{b,oh,ow} x[b, oh*sh - padTop + fh*dh, ow*sw - padLeft + fw*dw, ci]
 *                                  · dy[b, oh, ow, ci*CM + cm].
 * The filter's trailing [CI, CM] axes flatten to the output channel ci*CM + cm, so each tap
 * accumulates one contiguous run of OC = CI*CM sums. Sums are kept in float64.
 */
export function accumulateDepthwiseFilterGradient(x: Float32Array, dy: Float32Array, g: ConvGeometry, dW: Float32Array): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, strideWidth } = g;
  const multiplier = outChannels / inChannels;
  const sums = new Float64Array(g.filterHeight * g.filterWidth * outChannels);
  for (let b = 0; b < g.batch; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const dyRow = (b * outHeight + oh) * outWidth * outChannels;
      for (let fh = 0; fh < g.filterHeight; fh++) {
        const ih = oh * g.strideHeight + fh * g.dilationHeight - g.padTop;
        if (ih < 0 || ih >= inHeight) continue;
        const xRow = (b * inHeight + ih) * inWidth * inChannels;
        for (let fw = 0; fw < g.filterWidth; fw++) {
          const colTap = fw * g.dilationWidth - g.padLeft;
          const [owFirst, owEnd] = validOutputRange(colTap, strideWidth, inWidth, outWidth);
          const tap = (fh * g.filterWidth + fw) * outChannels;
          for (let ow = owFirst; ow < owEnd; ow++) {
            const xAt = xRow + (ow * strideWidth + colTap) * inChannels;
            const dyAt = dyRow + ow * outChannels;
            if (multiplier === 1) {
              // The common case gets its own flat loop: ~25% faster than a length-1 inner loop.
              for (let c = 0; c < inChannels; c++) sums[tap + c] = sums[tap + c]! + x[xAt + c]! * dy[dyAt + c]!;
              continue;
            }
            for (let ci = 0; ci < inChannels; ci++) {
              const xValue = x[xAt + ci]!;
              for (let oc = ci * multiplier, end = oc + multiplier; oc < end; oc++) {
                sums[tap + oc] = sums[tap + oc]! + xValue * dy[dyAt + oc]!;
              }
            }
          }
        }
      }
    }
  }
  dW.set(sums);
}

function depthwiseConv2dBackpropFilter(args: {
  inputs: DepthwiseConv2dNativeBackpropFilterInputs;
  attrs: DepthwiseConv2dNativeBackpropFilterAttrs;
  backend: unknown;
}): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { x, dy } = args.inputs;
  if (x === undefined || dy === undefined) throw new Error('DepthwiseConv2dNativeBackpropFilter: needs inputs x and dy');
  const { strides, dilations, pad, dimRoundingMode, filterShape } = args.attrs;
  const g = nhwcConvGeometry({
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    xShape: x.shape,
    filterShape,
    strides,
    pad,
    dilations,
    dimRoundingMode,
    depthwise: true,
  });
  assertGradientShape('DepthwiseConv2dNativeBackpropFilter', dy, g);
  const dW = allocateFloat32(backend, [...filterShape]);
  accumulateDepthwiseFilterGradient(heapFloat32(backend, x), heapFloat32(backend, dy), g, heapFloat32(backend, dW));
  return dW;
}

export const depthwiseConv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropFilter',
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dBackpropFilter as unknown as KernelFunc,
};
