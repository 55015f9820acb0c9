import { simdAddModuleBytes, wasmApi } from './simd-add-module.js';
import { ringArena } from './wasm-arena.js';

/**
 * The element-wise loops of the ring. The add runs in WebAssembly SIMD when the runtime has it: in
 * place when both arrays live in the ring arena (wasm-arena.ts: ring buffers and receive slots do);
 * otherwise block by block (copy dst and src blocks into the module's memory, add, copy back), which
 * still beats the plain JS loop 2–4× on this machine since memcpy of cached blocks is ~20 GB/s.
 */

/** Floats per block: two blocks (dst, src) stay in L1/L2. */
const BLOCK = 16 * 1024;

interface SimdAdder {
  dst: Float32Array;
  src: Float32Array;
  add(dstOffset: number, srcOffset: number, n: number): void;
}

function createSimdAdder(): SimdAdder | undefined {
  const wasm = wasmApi();
  const bytes = simdAddModuleBytes({ sharedMemory: false });
  try {
    if (!wasm || !wasm.validate(bytes)) return undefined;
    const memory = new wasm.Memory({ initial: Math.ceil((2 * BLOCK * 4) / 65536) });
    const instance = new wasm.Instance(new wasm.Module(bytes), { env: { memory } });
    const add = instance.exports.add as (dst: number, src: number, n: number) => void;
    return { dst: new Float32Array(memory.buffer, 0, BLOCK), src: new Float32Array(memory.buffer, BLOCK * 4, BLOCK), add };
  } catch {
    return undefined;
  }
}

const simd = process.env.RINGPIPE_NO_SIMD ? undefined : createSimdAdder();

/** Which implementation `addInto` uses, for reports. */
export const ADD_KERNEL: 'wasm-simd' | 'js' = simd ? 'wasm-simd' : 'js';

/** dst[i] += src[i] for i < src.length. */
export function addInto(dst: Float32Array, src: Float32Array): void {
  const arena = ringArena();
  if (arena && src.length >= 64 && arena.holds(dst) && arena.holds(src)) {
    arena.add(dst, src);
    return;
  }
  if (!simd || src.length < 64) {
    addIntoJs(dst, src);
    return;
  }
  const n = src.length;
  for (let offset = 0; offset < n; offset += BLOCK) {
    const count = Math.min(BLOCK, n - offset);
    simd.dst.set(dst.subarray(offset, offset + count));
    simd.src.set(src.subarray(offset, offset + count));
    // Lanes past `count` (up to 3) add stale values into scratch that is never copied back.
    simd.add(0, BLOCK * 4, (count + 3) & ~3);
    dst.set(simd.dst.subarray(0, count), offset);
  }
}

/** The plain JS add, unrolled by 4 (≈ 0.3–1 G elements/s here). */
export function addIntoJs(dst: Float32Array, src: Float32Array): void {
  const n = src.length;
  const tail = n & 3;
  let i = 0;
  for (; i < n - tail; i += 4) {
    dst[i] = dst[i]! + src[i]!;
    dst[i + 1] = dst[i + 1]! + src[i + 1]!;
    dst[i + 2] = dst[i + 2]! + src[i + 2]!;
    dst[i + 3] = dst[i + 3]! + src[i + 3]!;
  }
  for (; i < n; i++) dst[i] = dst[i]! + src[i]!;
}

/** values[i] *= factor. */
export function scaleInPlace(values: Float32Array, factor: number): void {
  const n = values.length;
  for (let i = 0; i < n; i++) values[i] = values[i]! * factor;
}
