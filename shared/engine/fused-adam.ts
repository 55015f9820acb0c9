import * as tf from '@tensorflow/tfjs';
import { adamSimdModuleBytes, type AdamKernel } from './adam-simd-module.js';
import type { FlatGradientEntry, FlatGradientOptimizer, FlatGradients } from './flat-gradients.js';

/** A region of a flat buffer: elements [start, end). */
interface FlatRegion {
  start: number;
  end: number;
}

/** See FusedAdam.beginShardedStep. */
export interface ShardedAdamStep {
  /** Summed gradients in values[region] → updated weights in values[region]. */
  update(values: Float32Array, region: FlatRegion): void;
  /** values holds every variable's updated weights: assign them and end the step. */
  finish(values: Float32Array): void;
}
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
  /** After a sharded step the slot's weights are current only in this rank's regions. */
  partialWeights: boolean;
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
    this.scalarStep(g, m, v, w, 0, n, c);
  }

  /**
   * The same step over exactly `n` floats from any offset (a part of a variable): the SIMD kernel on
   * whole groups of 4, the scalar loop (same float32 roundings) on the rest, so no neighbour is touched.
   */
  stepExact(g: number, m: number, v: number, w: number, n: number, c: number[]): void {
    const body = this.kernel ? Math.floor(n / 4) * 4 : 0;
    if (body > 0) this.kernel!(g * 4, m * 4, v * 4, w * 4, body, ...c);
    this.scalarStep(g, m, v, w, body, n, c);
  }

  private scalarStep(g: number, m: number, v: number, w: number, from: number, n: number, c: number[]): void {
    const [b1, oneMinusB1, b2, oneMinusB2, oneMinusAcc1, oneMinusAcc2, negLr, eps] = c as [number, number, number, number, number, number, number, number];
    const f = this.floats;
    for (let i = from; i < n; i++) {
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

  /**
   * One Adam step taken in parts, ZeRO-1 style (peer/data-parallel/sharded-adam-exchange.ts): each
   * rank updates only the segment of the fused buffer whose gradient sum it finishes in the ring's
   * reduce-scatter, turning those summed gradients into updated weights in place, and the all-gather
   * then carries weights. `update` may run any number of times (on disjoint regions); `finish` runs
   * once, when the buffer holds every rank's updated weights: it assigns the variables and ends the
   * step. Each element's arithmetic is the same as applyFlatGradients', so the weights are too.
   * The moments of elements outside this rank's regions are never touched: the regions of a ring must
   * stay the same from step to step (a new ring starts a new optimizer).
   */
  beginShardedStep(entries: readonly FlatGradientEntry[]): ShardedAdamStep {
    const constants = this.stepConstants();
    let finished = false;
    return {
      update: (values, region) => {
        if (finished) throw new Error('FusedAdam: update after the sharded step finished');
        for (const entry of entries) {
          if (entry.control) continue;
          const start = Math.max(region.start, entry.offset);
          const end = Math.min(region.end, entry.offset + entry.size);
          if (start >= end) continue;
          const slot = this.slotFor(entry.name, true);
          if (entry.size !== slot.size) throw new Error(`gradient of '${entry.name}' has ${entry.size} values, the variable ${slot.size}`);
          const [g, m, v, w] = this.pointers(slot, start - entry.offset);
          this.memory.floats.set(values.subarray(start, end), g);
          this.memory.stepExact(g, m, v, w, end - start, constants);
          values.set(this.memory.floats.subarray(w, w + end - start), start);
        }
      },
      finish: (values) => {
        if (finished) throw new Error('FusedAdam: the sharded step already finished');
        finished = true;
        for (const entry of entries) {
          if (entry.control) continue;
          const slot = this.slotFor(entry.name, true);
          // This rank's regions are in slot w already; the others' are kept only in the variable.
          this.assignWeights(slot, values.subarray(entry.offset, entry.offset + entry.size));
          slot.partialWeights = true;
        }
        this.finishStep();
      },
    };
  }

  private assignWeights(slot: AdamSlot, weights: Float32Array): void {
    // The wasm backend copies the values into its own heap; the cpu backend keeps the array it is
    // given, and a view of our memory goes stale (detached) when the memory grows for the next slot.
    const updated = tf.tensor(tf.getBackend() === 'wasm' ? weights : weights.slice(), slot.shape, 'float32');
    slot.variable.assign(updated);
    updated.dispose();
    slot.writtenData = slot.variable.dataId;
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
    const { size } = slot;
    const [g, m, v, w] = this.pointers(slot);
    fill(this.memory.floats, g);
    this.memory.step(g, m, v, w, size, constants);
    this.assignWeights(slot, this.memory.floats.subarray(w, w + size));
  }

  /**
   * Where the slot's gradient, first and second moments and weights sit in the kernel memory (each
   * padded to whole groups of 4 floats), `from` elements into the variable.
   */
  private pointers(slot: AdamSlot, from = 0): [g: number, m: number, v: number, w: number] {
    const stride = Math.ceil(slot.size / 4) * 4;
    const start = slot.offset + from;
    return [start, start + stride, start + 2 * stride, start + 3 * stride];
  }

  private finishStep(): void {
    this.accBeta1 = f32(this.accBeta1 * f32(this.beta1));
    this.accBeta2 = f32(this.accBeta2 * f32(this.beta2));
    this.incrementIterations();
  }

  /** `sharded`: for a sharded step, which needs the slot's weights only in its own regions. */
  private slotFor(name: string, sharded = false): AdamSlot {
    let slot = this.slots.get(name);
    if (!slot) {
      const variable = tf.engine().registeredVariables[name];
      if (!variable) throw new Error(`FusedAdam: no variable named '${name}'`);
      const size = variable.size;
      const offset = this.memory.allocate(4 * Math.ceil(size / 4) * 4);
      slot = { variable, shape: [...variable.shape], size, offset, writtenData: undefined, partialWeights: false };
      this.slots.set(name, slot);
    }
    // Someone else assigned the variable (initial weights, a broadcast, a restore): start from its values.
    if (slot.variable.dataId !== slot.writtenData || (slot.partialWeights && !sharded)) {
      copyFloat32Into(slot.variable, this.memory.floats, this.pointers(slot)[3]);
      // The slot holds the variable's values now: later parts of a sharded step must not copy them again.
      slot.writtenData = slot.variable.dataId;
      slot.partialWeights = false;
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
