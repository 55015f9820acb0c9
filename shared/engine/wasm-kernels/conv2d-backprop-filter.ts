// Conv2DBackpropFilter for the wasm backend. At stride 1 it is a forward convolution (batch and
// channels swapped) on XNNPACK; otherwise dW = im2col(x)ᵀ · dy on the XNNPACK matmul.
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
import { matMulOnWasm } from './wasm-matmul.js';
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
  const byConvolution = filterGradientByConvolution(backend, x, dy, g, filterShape);
  if (byConvolution !== undefined) return byConvolution;

  const colT = allocateFloat32(backend, [1, taps, positions]);
  // A private copy of dy as the right-hand matrix: XNNPACK caches its packed right-hand
  // matrix keyed on the tensor id, so passing dy itself would leave a cache entry that a
  // later matmul using dy under another [rows, cols] split would wrongly reuse.
  const dyCopy = allocateFloat32(backend, [1, positions, g.outChannels]);
  // Views only after the last allocation above: malloc may grow (and detach) the heap.
  heapFloat32(backend, dyCopy).set(heapFloat32(backend, dy));
  fillTransposedIm2col(heapFloat32(backend, x), g, heapFloat32(backend, colT));
  const product = matMulOnWasm(backend, colT, dyCopy);
  release(backend, colT);
  release(backend, dyCopy);
  return withShape(product, filterShape);
}

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter as unknown as KernelFunc,
};
