/**
 * A hand-assembled WebAssembly module (no toolchain needed) with one function,
 * `adam(g, m, v, w, n, b1, oneMinusB1, b2, oneMinusB2, oneMinusAcc1, oneMinusAcc2, negLr, eps)`:
 * one Adam step over n float32s (n a multiple of 4) at byte offsets g, m, v, w of its imported
 * memory, four lanes per instruction. Each lane does exactly the float32 operations of tfjs's
 * AdamOptimizer, in its order (IEEE single rounding per operation, as the JS fallback with
 * Math.fround), so the results are the same bits:
 *   m = m·b1 + g·(1−b1);  v = v·b2 + (g·g)·(1−b2)
 *   w = ((m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε))·(−lr) + w
 * Binary format: https://webassembly.github.io/spec/core/binary/.
 */
import { uleb128, wasmName, wasmSection } from './wasm-binary.js';

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const simd = (sub: number): number[] => [0xfd, ...uleb128(sub)];
const op = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  get: 0x20,
  set: 0x21,
  tee: 0x22,
  i32Const: 0x41,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Shl: 0x74,
  load: simd(0x00),
  store: simd(0x0b),
  splat: simd(0x13),
  sqrt: simd(0xe3),
  add: simd(0xe4),
  mul: simd(0xe6),
  div: simd(0xe7),
  empty: 0x40,
};
/** memarg: alignment hint 2^4, offset 0. */
const MEMARG = [4, 0];

// Parameters 0–4 (i32 offsets and count), 5–12 (f32 constants); then locals.
const [G, M, V, W, N] = [0, 1, 2, 3, 4];
const FIRST_CONSTANT = 5;
const CONSTANTS = 8;
const END = 13; // i32
const SPLAT = 14; // 8 v128: the constants in every lane
const [GI, MI, VI] = [22, 23, 24]; // v128
const [B1, OMB1, B2, OMB2, OMA1, OMA2, NLR, EPS] = [SPLAT, SPLAT + 1, SPLAT + 2, SPLAT + 3, SPLAT + 4, SPLAT + 5, SPLAT + 6, SPLAT + 7];

const advance = (local: number): number[] => [op.get, local, op.i32Const, 16, op.i32Add, op.set, local];

const body = [
  2, 1, I32, 11, V128, // locals: end; 8 splats + g, m, v
  ...Array.from({ length: CONSTANTS }, (_, i) => [op.get, FIRST_CONSTANT + i, ...op.splat, op.set, SPLAT + i]).flat(),
  op.get, G, op.get, N, op.i32Const, 2, op.i32Shl, op.i32Add, op.set, END, // end = g + n·4
  op.block, op.empty,
  op.loop, op.empty,
  op.get, G, op.get, END, op.i32GeU, op.brIf, 1, // while (g < end)
  op.get, G, ...op.load, ...MEMARG, op.set, GI,
  // m = m·b1 + g·(1−b1)
  op.get, M,
  op.get, M, ...op.load, ...MEMARG, op.get, B1, ...op.mul,
  op.get, GI, op.get, OMB1, ...op.mul,
  ...op.add, op.tee, MI,
  ...op.store, ...MEMARG,
  // v = v·b2 + (g·g)·(1−b2)
  op.get, V,
  op.get, V, ...op.load, ...MEMARG, op.get, B2, ...op.mul,
  op.get, GI, op.get, GI, ...op.mul, op.get, OMB2, ...op.mul,
  ...op.add, op.tee, VI,
  ...op.store, ...MEMARG,
  // w = ((m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε))·(−lr) + w
  op.get, W,
  op.get, MI, op.get, OMA1, ...op.div,
  op.get, VI, op.get, OMA2, ...op.div, ...op.sqrt, op.get, EPS, ...op.add,
  ...op.div, op.get, NLR, ...op.mul,
  op.get, W, ...op.load, ...MEMARG,
  ...op.add,
  ...op.store, ...MEMARG,
  ...advance(G), ...advance(M), ...advance(V), ...advance(W),
  op.br, 0,
  op.end,
  op.end,
  op.end,
];

/** The module, importing `env.memory` (a private, non-shared memory of at least one page). */
export function adamSimdModuleBytes(): Uint8Array {
  const params = [I32, I32, I32, I32, I32, ...Array.from({ length: CONSTANTS }, () => F32)];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...wasmSection(1, [1, 0x60, params.length, ...params, 0]), // type: (5 × i32, 8 × f32) → ()
    ...wasmSection(2, [1, ...wasmName('env'), ...wasmName('memory'), 0x02, 0x00, 1]), // import env.memory, min 1 page
    ...wasmSection(3, [1, 0]),
    ...wasmSection(7, [1, ...wasmName('adam'), 0x00, 0]),
    ...wasmSection(10, [1, ...uleb128(body.length), ...body]),
  ]);
}

export type AdamKernel = (g: number, m: number, v: number, w: number, n: number, ...constants: number[]) => void;
