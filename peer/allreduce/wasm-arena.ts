import { simdAddModuleBytes, wasmApi } from './simd-add-module.js';

const PAGE = 65_536;
/** 1 GiB of address space, reserved (not committed) up front as shared memories require. */
const MAX_PAGES = 16_384;

/**
 * Long-lived ring memory (gradient buffers, receive slots) in one shared WebAssembly memory, so the
 * SIMD add works in place on both operands: no copying blocks in and out. Shared, so I/O threads read
 * sockets straight into it and send straight from it. A bump allocator: nothing is ever freed, which
 * suits buffers allocated once per process and reused every step.
 */
export class WasmArena {
  private readonly memory: { buffer: ArrayBuffer | SharedArrayBuffer; grow(pages: number): number };
  private readonly addKernel: (dst: number, src: number, n: number) => void;
  /** Every SharedArrayBuffer object the memory has had (growing hands out a new one). */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private top = 0;

  private constructor() {
    const wasm = wasmApi()!;
    this.memory = new wasm.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    const instance = new wasm.Instance(new wasm.Module(simdAddModuleBytes({ sharedMemory: true })), { env: { memory: this.memory } });
    this.addKernel = instance.exports.add as (dst: number, src: number, n: number) => void;
    this.buffers.add(this.memory.buffer);
  }

  /** The process's arena, or undefined where WebAssembly SIMD or shared memory is missing. */
  static create(): WasmArena | undefined {
    const wasm = wasmApi();
    try {
      if (!wasm || !wasm.validate(simdAddModuleBytes({ sharedMemory: true }))) return undefined;
      return new WasmArena();
    } catch {
      return undefined;
    }
  }

  /** `bytes` of zeroed memory, 64-byte aligned; undefined when the arena is full. */
  allocate(bytes: number): { buffer: SharedArrayBuffer; byteOffset: number } | undefined {
    const start = Math.ceil(this.top / 64) * 64;
    const end = start + bytes;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) return undefined;
      this.memory.grow(pages);
      this.buffers.add(this.memory.buffer);
    }
    this.top = end;
    return { buffer: this.memory.buffer as SharedArrayBuffer, byteOffset: start };
  }

  holds(array: ArrayBufferView): boolean {
    return this.buffers.has(array.buffer);
  }

  /** dst[i] += src[i], both in this arena (every arena buffer starts at the memory's base). */
  add(dst: Float32Array, src: Float32Array): void {
    const n = src.length;
    const vectorized = n & ~3;
    if (vectorized > 0) this.addKernel(dst.byteOffset, src.byteOffset, vectorized);
    for (let i = vectorized; i < n; i++) dst[i] = dst[i]! + src[i]!;
  }
}

let arena: WasmArena | undefined | null = null;

/** The shared arena of this thread, created on first use. */
export function ringArena(): WasmArena | undefined {
  if (arena === null) arena = process.env.RINGPIPE_NO_SIMD ? undefined : WasmArena.create();
  return arena;
}

/** Shared memory for a ring buffer or slot: from the arena when possible, else a plain SharedArrayBuffer. */
export function allocateShared(bytes: number): { buffer: SharedArrayBuffer; byteOffset: number } {
  return ringArena()?.allocate(bytes) ?? { buffer: new SharedArrayBuffer(bytes), byteOffset: 0 };
}
