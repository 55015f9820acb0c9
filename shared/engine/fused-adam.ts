import * as tf from '@tensorflow/tfjs';
import { adamSimdModuleBytes, type AdamKernel } from './adam-simd-module.js';
import type { FlatGradientOptimizer, FlatGradients } from './flat-gradients.js';
import { copyFloat32Into } from './tensor-read.js';

/** A named tensor as tfjs optimizers take them (tfjs does not export the type from its main entry). */
type NamedTensor = { name: string; tensor: tf.Tensor };

/** One variable's Adam state, kept in plain float32 memory between steps. */
interface AdamSlot {
  variable: tf.Variable;
  shape: number[];
  size: number;
  /** Float offset of this slot's four regions (gradient, m, v, weights) in the kernel memory. */
  offset: number;
  /** The variable's data after our last assign: a different one means someone else wrote it. */
  writtenData: object | undefined;
}

const f32 = Math.fround;
const PAGE = 65_536;

/** Where slots live: one growable block of float32 memory, a WebAssembly memory when SIMD is available. */
class AdamMemory {
  private memory: { buffer: ArrayBufferLike; grow(pages: number): number } | undefined;
  private plain: Float32Array | undefined;
  private readonly kernel: AdamKernel | undefined;
  floats: Float32Array;
  used = 0;

  constructor() {
    const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    try {
      const bytes = adamSimdModuleBytes();
      if (wasm && !process.env.RINGPIPE_NO_SIMD && wasm.validate(bytes)) {
        const memory = new wasm.Memory({ initial: 1 });
        const instance = new wasm.Instance(new wasm.Module(bytes), { env: { memory } });
        this.memory = memory;
        this.kernel = instance.exports.adam as AdamKernel;
      }
    } catch {
      this.memory = undefined;
    }
    this.floats = this.memory ? new Float32Array(this.memory.buffer) : (this.plain = new Float32Array(0));
  }

  get kind(): 'wasm-simd' | 'js' {
    return this.kernel ? 'wasm-simd' : 'js';
  }

  /** `floats` more zeroed floats, 16-byte aligned; returns their offset (views may move: re-read `floats`). */
  allocate(floats: number): number {
    const offset = this.used;
    this.used += Math.ceil(floats / 4) * 4;
    if (this.used > this.floats.length) {
      if (this.memory) {
        this.memory.grow(Math.ceil((this.used * 4 - this.memory.buffer.byteLength) / PAGE));
        this.floats = new Float32Array(this.memory.buffer);
      } else {
        const grown = new Float32Array(this.used * 2);
        grown.set(this.plain!);
        this.floats = this.plain = grown;
      }
    }
    return offset;
  }

  /** One Adam step over `n` floats (padded to 4: padding stays 0) of regions g, m, v, w. */
  step(g: number, m: number, v: number, w: number, n: number, c: number[]): void {
    const padded = Math.ceil(n / 4) * 4;
    if (this.kernel) {
      this.kernel(g * 4, m * 4, v * 4, w * 4, padded, ...c);
      return;
    }
    const [b1, oneMinusB1, b2, oneMinusB2, oneMinusAcc1, oneMinusAcc2, negLr, eps] = c as [number, number, number, number, number, number, number, number];
    const f = this.floats;
    for (let i = 0; i < n; i++) {
      const gi = f[g + i]!;
      const mi = f32(f32(f[m + i]! * b1) + f32(gi * oneMinusB1));
      const vi = f32(f32(f[v + i]! * b2) + f32(f32(gi * gi) * oneMinusB2));
      f[m + i] = mi;
      f[v + i] = vi;
      f[w + i] = f32(f32(f32(f32(mi / oneMinusAcc1) / f32(f32(Math.sqrt(f32(vi / oneMinusAcc2))) + eps)) * negLr) + f[w + i]!);
    }
  }
}

/** The part of the WebAssembly global used here (the project's TypeScript lib has no wasm types). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBufferLike; grow(pages: number): number };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

/**
 * Adam (Kingma & Ba) as one pass per variable over flat float32 memory, in WebAssembly SIMD
 * (adam-simd-module.ts), instead of tfjs's ~12 tensor ops per variable, each allocating and freeing
 * backend memory. Per step it reads each gradient once, updates moments and weights in one loop, and
 * writes each variable once.
 *
 * Every operation is rounded to float32 in the order tfjs's AdamOptimizer uses, so the weights are
 * bit for bit those tf.train.adam produces (test/fused-adam.test.ts): swapping one for the other
 * changes speed, not results. Moments live here, not in tfjs variables, so getWeights/setWeights
 * (optimizer checkpoints) are not supported.
 */
export class FusedAdam extends tf.Optimizer implements FlatGradientOptimizer {
  static get className(): string {
    return 'Adam';
  }

  private readonly slots = new Map<string, AdamSlot>();
  private readonly memory = new AdamMemory();
  private accBeta1: number;
  private accBeta2: number;
  private readonly epsilon: number;

  constructor(
    readonly learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    epsilon?: number,
  ) {
    super();
    this.accBeta1 = f32(beta1);
    this.accBeta2 = f32(beta2);
    // As tfjs: the backend's epsilon (1e-7 for float32 backends) unless given.
    this.epsilon = f32(epsilon ?? tf.backend().epsilon());
  }

  /** Which kernel runs the update, for reports. */
  get kernel(): 'wasm-simd' | 'js' {
    return this.memory.kind;
  }

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries = Array.isArray(variableGradients) ? variableGradients.map((g) => [g.name, g.tensor] as const) : Object.entries(variableGradients);
    const constants = this.stepConstants();
    for (const [name, gradient] of entries) {
      if (!gradient) continue;
      this.update(name, gradient.size, constants, (target, offset) => copyFloat32Into(gradient, target, offset));
    }
    this.finishStep();
  }

  /**
   * The same update from gradients laid end to end in one buffer (the data-parallel exchange's
   * reduced buffer): each is copied once into the kernel's memory, and no gradient tensor is built.
   */
  applyFlatGradients({ values, entries }: FlatGradients): void {
    const constants = this.stepConstants();
    for (const entry of entries) {
      if (entry.control) continue;
      if (entry.offset + entry.size > values.length) throw new Error(`gradient of '${entry.name}' ends at ${entry.offset + entry.size}, past the buffer's ${values.length} values`);
      this.update(entry.name, entry.size, constants, (target, offset) => target.set(values.subarray(entry.offset, entry.offset + entry.size), offset));
    }
    this.finishStep();
  }

  private stepConstants(): number[] {
    return [
      f32(this.beta1),
      f32(1 - this.beta1),
      f32(this.beta2),
      f32(1 - this.beta2),
      f32(1 - this.accBeta1),
      f32(1 - this.accBeta2),
      f32(-this.learningRate),
      this.epsilon,
    ];
  }

  /** One variable's update: `fill` writes its gradient at `offset` of `target` (the kernel memory). */
  private update(name: string, gradientSize: number, constants: number[], fill: (target: Float32Array, offset: number) => void): void {
    const slot = this.slotFor(name);
    if (gradientSize !== slot.size) throw new Error(`gradient of '${name}' has ${gradientSize} values, the variable ${slot.size}`);
    const { offset, size } = slot;
    const stride = Math.ceil(size / 4) * 4;
    const [g, m, v, w] = [offset, offset + stride, offset + 2 * stride, offset + 3 * stride];
    fill(this.memory.floats, g);
    this.memory.step(g, m, v, w, size, constants);
    // The wasm backend copies the values into its own heap; the cpu backend keeps the array it is
    // given, and a view of our memory goes stale (detached) when the memory grows for the next slot.
    const weights = this.memory.floats.subarray(w, w + size);
    const updated = tf.tensor(tf.getBackend() === 'wasm' ? weights : weights.slice(), slot.shape, 'float32');
    slot.variable.assign(updated);
    updated.dispose();
    slot.writtenData = slot.variable.dataId;
  }

  private finishStep(): void {
    this.accBeta1 = f32(this.accBeta1 * f32(this.beta1));
    this.accBeta2 = f32(this.accBeta2 * f32(this.beta2));
    this.incrementIterations();
  }

  private slotFor(name: string): AdamSlot {
    let slot = this.slots.get(name);
    if (!slot) {
      const variable = tf.engine().registeredVariables[name];
      if (!variable) throw new Error(`FusedAdam: no variable named '${name}'`);
      const size = variable.size;
      const offset = this.memory.allocate(4 * Math.ceil(size / 4) * 4);
      slot = { variable, shape: [...variable.shape], size, offset, writtenData: undefined };
      this.slots.set(name, slot);
    }
    // Someone else assigned the variable (initial weights, a broadcast, a restore): start from its values.
    if (slot.variable.dataId !== slot.writtenData) {
      const w = slot.offset + 3 * Math.ceil(slot.size / 4) * 4;
      copyFloat32Into(slot.variable, this.memory.floats, w);
    }
    return slot;
  }

  override async getWeights(): Promise<NamedTensor[]> {
    throw new Error('FusedAdam keeps its moments outside tfjs and cannot export them; use tf.train.adam where optimizer state must be checkpointed');
  }

  override async setWeights(): Promise<void> {
    throw new Error('FusedAdam cannot import optimizer state; use tf.train.adam where optimizer state must be restored');
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }

  override dispose(): void {
    this.slots.clear();
    super.dispose();
  }
}
