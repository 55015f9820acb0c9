// Conv geometry for the NHWC kernels, computed by tfjs itself so padding ('valid', 'same',
// explicit, numeric + dimRoundingMode) matches the forward op exactly.
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

/** What the loops need: plain numbers, with the dilation folded into the filter taps. */
export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  padTop: number;
  padLeft: number;
}

export interface ConvGeometryRequest {
  kernelName: string;
  xShape: number[];
  filterShape: number[];
  strides: number | [number, number];
  pad: Pad;
  dilations?: number | [number, number] | undefined;
  dimRoundingMode?: RoundingMode;
  dataFormat?: string | undefined;
  depthwise: boolean;
}

export function nhwcConvGeometry(request: ConvGeometryRequest): ConvGeometry {
  if (request.dataFormat !== undefined && request.dataFormat !== 'NHWC' && request.dataFormat !== 'channelsLast') {
    throw new Error(`${request.kernelName} on wasm supports only NHWC data, got dataFormat '${request.dataFormat}'`);
  }
  if (request.xShape.length !== 4 || request.filterShape.length !== 4) {
    throw new Error(`${request.kernelName} on wasm expects rank-4 input and filter shapes`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    request.xShape as [number, number, number, number],
    request.filterShape as [number, number, number, number],
    request.strides,
    request.dilations ?? 1,
    request.pad,
    request.dimRoundingMode,
    request.depthwise,
    'channelsLast',
  );
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    dilationHeight: info.dilationHeight,
    dilationWidth: info.dilationWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/**
 * The output positions [first, end) whose input position `o*stride + tapOffset` lies inside
 * [0, inSize). Computing the range once lets the inner loops run without bounds checks.
 */
export function validOutputRange(tapOffset: number, stride: number, inSize: number, outSize: number): [number, number] {
  const first = Math.min(outSize, tapOffset >= 0 ? 0 : Math.ceil(-tapOffset / stride));
  const end = Math.min(outSize, Math.floor((inSize - 1 - tapOffset) / stride) + 1);
  return [first, Math.max(first, end)];
}

/** Rejects a dy whose shape is not what the convolution described by `g` produces. */
export function assertGradientShape(kernelName: string, dy: TensorInfo, g: ConvGeometry): void {
  const expected = [g.batch, g.outHeight, g.outWidth, g.outChannels];
  if (dy.shape.length !== 4 || dy.shape.some((size, axis) => size !== expected[axis])) {
    throw new Error(`${kernelName}: dy has shape [${dy.shape.join(',')}], the convolution produces [${expected.join(',')}]`);
  }
}
