// A faster Conv2DBackpropInput for the wasm backend: col = dy · Wᵀ on the XNNPACK matmul,
// then col2im. Optional: the stock wasm kernel (a direct loop) stays the default.
import type { Conv2DBackpropInputAttrs, Conv2DBackpropInputInputs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { accumulateCol2im } from './col2im.js';
import { assertGradientShape, nhwcConvGeometry } from './conv-geometry.js';
import { matMulOnWasm } from './wasm-matmul.js';
import { allocateFloat32, asWasmBackend, heapFloat32, release, withShape } from './wasm-backend.js';

/** tfjs never passes dilations to this kernel (its conv2d gradient requires 1); honour them if given. */
type InputGradAttrs = Conv2DBackpropInputAttrs & { dilations?: number | [number, number] };

/** filterT[co, k] = filter[k, co] for the filter viewed as [K = FH*FW*CI, CO]. */
function transposeFilter(filter: Float32Array, taps: number, outChannels: number, filterT: Float32Array): void {
  for (let k = 0; k < taps; k++) {
    const row = k * outChannels;
    for (let co = 0; co < outChannels; co++) filterT[co * taps + k] = filter[row + co]!;
  }
}

function conv2dBackpropInput(args: { inputs: Conv2DBackpropInputInputs; attrs: InputGradAttrs; backend: unknown }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { dy, filter } = args.inputs;
  if (dy === undefined || filter === undefined) throw new Error('Conv2DBackpropInput: needs inputs dy and filter');
  const { strides, pad, dataFormat, dimRoundingMode, inputShape, dilations } = args.attrs;
  const g = nhwcConvGeometry({
    kernelName: 'Conv2DBackpropInput',
    xShape: [...inputShape],
    filterShape: filter.shape,
    strides,
    pad,
    dilations,
    dimRoundingMode,
    dataFormat,
    depthwise: false,
  });
  assertGradientShape('Conv2DBackpropInput', dy, g);
  const taps = g.filterHeight * g.filterWidth * g.inChannels;
  const positions = g.batch * g.outHeight * g.outWidth;
  if (positions === 0 || taps === 0 || g.outChannels === 0) {
    const zeros = allocateFloat32(backend, [...inputShape]);
    heapFloat32(backend, zeros).fill(0);
    return zeros;
  }

  // Wᵀ materialised so the matmul needs no transposeB (which would leave the XNNPACK path).
  const filterT = allocateFloat32(backend, [1, g.outChannels, taps]);
  transposeFilter(heapFloat32(backend, filter), taps, g.outChannels, heapFloat32(backend, filterT));
  const col = matMulOnWasm(backend, withShape(dy, [1, positions, g.outChannels]), filterT);
  release(backend, filterT);

  const dx = allocateFloat32(backend, [...inputShape]);
  // Views only after the last allocation above: malloc may grow (and detach) the heap.
  const dxValues = heapFloat32(backend, dx);
  dxValues.fill(0);
  accumulateCol2im(heapFloat32(backend, col), g, dxValues);
  release(backend, col);
  return dx;
}

export const conv2dBackpropInputCol2imConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInput as unknown as KernelFunc,
};
