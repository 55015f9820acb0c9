// Conv2DBackpropFilter for the wasm backend: dW = im2col(x)ᵀ · dy on the XNNPACK matmul, or at
// stride 1, where it moves fewer bytes, a forward convolution on XNNPACK with batch and
// channels swapped.
import type {
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropFilterInputs,
  KernelConfig,
  KernelFunc,
  TensorInfo,
} from '@tensorflow/tfjs';
import { assertGradientShape, nhwcConvGeometry, type ConvGeometry } from './conv-geometry.js';
import { fillTransposedIm2col } from './im2col.js';
import { runStockKernel } from './kernel-registry.js';
import { matMulOnWasm, maySharePackedOperand } from './wasm-matmul.js';
import { allocateFloat32, asWasmBackend, heapFloat32, release, withShape, type WasmBackend } from './wasm-backend.js';

/** tfjs never passes dilations to this kernel (its conv2d gradient requires 1); honour them if given. */
type FilterGradAttrs = Conv2DBackpropFilterAttrs & { dilations?: number | [number, number] };

function conv2dBackpropFilter(args: { inputs: Conv2DBackpropFilterInputs; attrs: FilterGradAttrs; backend: unknown }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { x, dy } = args.inputs;
  if (x === undefined || dy === undefined) throw new Error('Conv2DBackpropFilter: needs inputs x and dy');
  const { strides, pad, dataFormat, dimRoundingMode, filterShape, dilations } = args.attrs;
  const g = nhwcConvGeometry({
    kernelName: 'Conv2DBackpropFilter',
    xShape: x.shape,
    filterShape,
    strides,
    pad,
    dilations,
    dimRoundingMode,
    dataFormat,
    depthwise: false,
  });
  assertGradientShape('Conv2DBackpropFilter', dy, g);
  return filterGradient(backend, x, dy, g, [...filterShape]);
}

/**
 * At stride 1, dW[fh, fw, ci, co] = Σ_{b,oh,ow} x[b, oh + fh·dh − padTop, ow + fw·dw − padLeft, ci] · dy[b, oh, ow, co]
 * is a forward convolution of x' = x as [ci, h, w, b] with the filter dy' = dy as
 * [oh, ow, b, co], stride (dh, dw), giving dW as [ci, fh, fw, co]: the batch becomes the summed
 * channel axis. Three transposes on the stock kernel, no im2col buffer. Returns undefined
 * where the padding it needs would be negative.
 */
function filterGradientByConvolution(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, filterShape: number[]): TensorInfo | undefined {
  if (g.strideHeight !== 1 || g.strideWidth !== 1) return undefined;
  const bottom = (g.filterHeight - 1) * g.dilationHeight + g.outHeight - g.inHeight - g.padTop;
  const right = (g.filterWidth - 1) * g.dilationWidth + g.outWidth - g.inWidth - g.padLeft;
  if (g.padTop < 0 || g.padLeft < 0 || bottom < 0 || right < 0) return undefined;
  const xByChannel = runStockKernel('Transpose', backend, { x }, { perm: [3, 1, 2, 0] });
  const dyAsFilter = runStockKernel('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] });
  const byChannel = runStockKernel(
    'Conv2D',
    backend,
    { x: xByChannel, filter: dyAsFilter },
    { strides: [g.dilationHeight, g.dilationWidth], pad: [[0, 0], [g.padTop, bottom], [g.padLeft, right], [0, 0]], dilations: 1, dataFormat: 'NHWC' },
  );
  release(backend, xByChannel);
  release(backend, dyAsFilter);
  const dW = runStockKernel('Transpose', backend, { x: byChannel }, { perm: [1, 2, 0, 3] });
  release(backend, byChannel);
  return withShape(dW, filterShape);
}

function filterGradient(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, filterShape: number[]): TensorInfo {
  const taps = g.filterHeight * g.filterWidth * g.inChannels;
  const positions = g.batch * g.outHeight * g.outWidth;
  if (positions === 0 || taps === 0 || g.outChannels === 0) {
    const zeros = allocateFloat32(backend, filterShape);
    heapFloat32(backend, zeros).fill(0);
    return zeros;
  }
  if (convolutionMovesLess(g)) {
    const byConvolution = filterGradientByConvolution(backend, x, dy, g, filterShape);
    if (byConvolution !== undefined) return byConvolution;
  }

  const colT = allocateFloat32(backend, [1, taps, positions]);
  // dy goes to XNNPACK as the right-hand matrix, whose packing it caches under dy's id. A
  // private copy unless that is known to be safe (see maySharePackedOperand).
  const dyShared = maySharePackedOperand(dy, positions);
  const dyMatrix = dyShared ? withShape(dy, [1, positions, g.outChannels]) : allocateFloat32(backend, [1, positions, g.outChannels]);
  // Views only after the last allocation above: malloc may grow (and detach) the heap.
  if (!dyShared) heapFloat32(backend, dyMatrix).set(heapFloat32(backend, dy));
  fillTransposedIm2col(heapFloat32(backend, x), g, heapFloat32(backend, colT));
  const product = matMulOnWasm(backend, colT, dyMatrix);
  release(backend, colT);
  if (!dyShared) release(backend, dyMatrix);
  return withShape(product, filterShape);
}

/**
 * Both routes run the same multiply-adds on XNNPACK; they differ in the bytes moved around it.
 * im2col writes K·M elements (K = FH·FW·CI taps, M = B·OH·OW positions) and XNNPACK packs dy
 * (M·CO). The convolution transposes x (B·H·W·CI) and dy (M·CO), and XNNPACK transposes and
 * packs dy again as its filter (2·M·CO). Measured on the MNIST CNN (CPU ms): layer 1 (K = 9,
 * dy 2.8M elements) 12 by im2col vs 19 by convolution; layer 2 (K = 288, dy 1M) 35 vs 32.
 */
function convolutionMovesLess(g: ConvGeometry): boolean {
  const positions = g.batch * g.outHeight * g.outWidth;
  const dyElements = positions * g.outChannels;
  const im2col = g.filterHeight * g.filterWidth * g.inChannels * positions + dyElements;
  const convolution = g.batch * g.inHeight * g.inWidth * g.inChannels + 3 * dyElements;
  return convolution < im2col;
}

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter as unknown as KernelFunc,
};
