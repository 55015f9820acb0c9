/**
 * A forward pass whose backward pass runs later.
 *
 * TensorFlow.js records a gradient tape only inside tf.grads()/variableGrads(), which run the forward
 * and the backward pass back to back. A pipeline stage needs them apart: the forward of micro-batch m
 * runs now, its backward only once the gradient comes back from the next stage, with other
 * micro-batches' forwards in between. `recordForward` records one forward pass's tape and keeps it,
 * with the tensors its gradient functions saved (the activations), until `backward` replays it.
 *
 * This is the one place that touches tfjs-core engine internals (startTape/endTape and
 * state.activeTape, stable since tfjs 1.x). The tape filtering and backprop below are tfjs-core's own
 * algorithm (src/tape.ts, Apache-2.0, © Google LLC), re-implemented because tfjs does not export it.
 */
import * as tf from '@tensorflow/tfjs';
import { denseMatMulGradient } from './matmul-gradient.js';

interface TapeNode {
  id: number;
  kernelName: string;
  outputs: tf.Tensor[];
  inputs: Record<string, tf.Tensor>;
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
  /** The kernel's attributes, kept by `recordForward` (tfjs's tape does not keep them). */
  attrs?: Record<string, unknown>;
}

type AddTapeNode = (kernelName: string, inputs: unknown, outputs: unknown, gradientsFunc: unknown, saved: unknown, attrs: Record<string, unknown>) => void;

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number; kernelDepth: number };
  startTape(): void;
  endTape(): void;
  addTapeNode: AddTapeNode;
  tidy<T extends tf.TensorContainer>(fn: () => T): T;
}

function engine(): EngineInternals {
  return tf.engine() as unknown as EngineInternals;
}

/**
 * Where a backward pass leaves the weight gradients of dense products for later. A stage needs the
 * input gradient of each micro-batch at once (its upstream neighbour waits for it) but a weight's
 * gradient only at the optimizer step: dW = Σ aᵢᵀ·dyᵢ over the micro-batches is one product of the
 * stacked factors, [a₁;…;a_M]ᵀ·[dy₁;…;dy_M], cheaper than M small ones (deferred weight gradient, as
 * in torchgpipe / zero-bubble schedules).
 */
export interface DeferredWeightGradients {
  /** Ids of the weights whose gradient may wait. */
  readonly weightIds: ReadonlySet<number>;
  /** Keeps one micro-batch's factors of weight `weightId`'s gradient (aᵀ·dy); takes ownership of both. */
  keep(weightId: number, a: tf.Tensor, dy: tf.Tensor): void;
}

export interface RecordedForward {
  /**
   * The forward pass's result, owned by the caller. It may be disposed before `backward`: the tape
   * refers to tensors by id and keeps its own copies of the values it needs.
   */
  readonly output: tf.Tensor;
  /**
   * Bytes of the tensors the tape keeps for the backward pass (what re-materialisation saves), each
   * buffer counted once, without the buffers of `shared` tensors (weights, which exist anyway).
   */
  readonly savedBytes: number;
  /**
   * The vector-Jacobian product: gradients of sum(output · dy) with respect to each of `wrt` (inputs
   * or variables read in the forward pass), in order; `dy` defaults to ones (for a scalar loss). A
   * tensor the output does not depend on gets zeros. The `wrt` tensors may already be disposed.
   * With `deferred`, the gradient of a weight of `deferred.weightIds` that is the right operand of a
   * plain 2-D matrix product goes to `deferred.keep` as its two factors instead; such a weight gets
   * null when that is its only gradient. Frees the tape; call at most once.
   */
  backward(wrt: readonly tf.Tensor[], dy?: tf.Tensor): tf.Tensor[];
  backward(wrt: readonly tf.Tensor[], dy: tf.Tensor | undefined, deferred: DeferredWeightGradients | undefined): (tf.Tensor | null)[];
  /** Frees the tape without a backward pass (after an error). */
  discard(): void;
}

/** Runs `forward` while recording its gradient tape, and returns the tape for a later backward pass. */
export function recordForward(forward: () => tf.Tensor, shared: readonly tf.Tensor[] = []): RecordedForward {
  const e = engine();
  if (e.state.gradientDepth !== 0) throw new Error('recordForward cannot run inside another gradient computation (tf.grads, variableGrads)');
  let output: tf.Tensor;
  // Keep each node's attributes (transpose flags of a matrix product) for a cheaper gradient
  // (matmul-gradient.ts): the engine's own addTapeNode drops them. Restored right after.
  const addTapeNode = e.addTapeNode;
  e.addTapeNode = function (this: EngineInternals, ...args: Parameters<AddTapeNode>): void {
    addTapeNode.apply(this, args);
    const tape = this.state.activeTape;
    const node = tape?.[tape.length - 1];
    if (node) node.attrs = args[5];
  };
  e.startTape();
  try {
    output = e.tidy(forward);
  } finally {
    e.endTape();
    delete (e as Partial<EngineInternals>).addTapeNode;
    if (e.addTapeNode !== addTapeNode) e.addTapeNode = addTapeNode;
  }
  // Detach the tape from the engine: the next tf.grads / recordForward starts a fresh one.
  const tape = e.state.activeTape ?? [];
  e.state.activeTape = null;
  return new DeferredTape(output, tape, savedBytesOf(tape, shared));
}

function savedBytesOf(tape: TapeNode[], shared: readonly tf.Tensor[]): number {
  const seen = new Set<unknown>(shared.map((t) => t.dataId));
  let bytes = 0;
  for (const node of tape) {
    for (const saved of node.saved ?? []) {
      if (seen.has(saved.dataId)) continue;
      seen.add(saved.dataId);
      bytes += saved.size * 4;
    }
  }
  return bytes;
}

class DeferredTape implements RecordedForward {
  private tape: TapeNode[] | undefined;

  constructor(
    readonly output: tf.Tensor,
    tape: TapeNode[],
    readonly savedBytes: number,
  ) {
    this.tape = tape;
  }

  backward(wrt: readonly tf.Tensor[], dy?: tf.Tensor): tf.Tensor[];
  backward(wrt: readonly tf.Tensor[], dy: tf.Tensor | undefined, deferred: DeferredWeightGradients | undefined): (tf.Tensor | null)[];
  backward(wrt: readonly tf.Tensor[], dy?: tf.Tensor, deferred?: DeferredWeightGradients): (tf.Tensor | null)[] {
    const tape = this.tape;
    if (!tape) throw new Error('backward already ran (or the tape was discarded) for this forward pass');
    if (dy && !tf.util.arraysEqual(dy.shape, this.output.shape)) {
      throw new Error(`output gradient of shape [${dy.shape.join(', ')}] does not match the output's shape [${this.output.shape.join(', ')}]`);
    }
    try {
      const kept = new Set<number>();
      // A weight whose only gradient was deferred gets null; tidy keeps just the tensors.
      const deferredOnly = (x: tf.Tensor, gradients: Record<number, tf.Tensor>): boolean => gradients[x.id] === undefined && kept.has(x.id);
      let only: boolean[] = [];
      const computed = tf.tidy(() => {
        const seed = dy ?? tf.ones(this.output.shape);
        const gradients: Record<number, tf.Tensor> = { [this.output.id]: seed };
        backpropagate(gradients, filterTape(tape, wrt, this.output), seed, deferred, kept);
        only = wrt.map((x) => deferredOnly(x, gradients));
        return wrt.filter((_, i) => !only[i]).map((x) => gradients[x.id] ?? tf.zeros(x.shape));
      });
      let next = 0;
      return wrt.map((_, i) => (only[i] ? null : computed[next++]!));
    } finally {
      this.discard();
    }
  }

  discard(): void {
    for (const node of this.tape ?? []) for (const saved of node.saved ?? []) saved.dispose();
    this.tape = undefined;
  }
}

/** The nodes on a path from one of `xs` to `y`, inputs pruned to those that depend on `xs`. */
function filterTape(tape: TapeNode[], xs: readonly tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromX.has(input.id))) {
      for (const output of node.outputs) fromX.add(output.id);
      nodesFromX.add(node.id);
    }
  }
  const leadsToY = new Set<number>([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((output) => leadsToY.has(output.id))) {
      for (const input of Object.values(node.inputs)) leadsToY.add(input.id);
      nodesToY.add(node.id);
    }
  }
  const filtered: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs = Object.fromEntries(Object.entries(node.inputs).filter(([, input]) => fromX.has(input.id)));
    filtered.push({ ...node, inputs });
  }
  return filtered;
}

/** Walks the tape backwards, accumulating each tensor's gradient in `gradients` (by tensor id). */
function backpropagate(gradients: Record<number, tf.Tensor>, tape: TapeNode[], seed: tf.Tensor, deferred: DeferredWeightGradients | undefined, kept: Set<number>): void {
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    const dys = node.outputs.map((output) => gradients[output.id] ?? null);
    if (!node.gradient) throw new Error(`cannot compute the gradient: no gradient function for ${node.kernelName}`);
    const dense = node.kernelName === 'BatchMatMul' ? denseMatMulGradient(node.attrs, node.saved, dys[0] ?? null) : undefined;
    const inputGradients = dense ?? node.gradient(dys);
    const weight = node.inputs.b;
    const deferWeight = dense !== undefined && deferred !== undefined && weight !== undefined && deferred.weightIds.has(weight.id);
    if (deferWeight) {
      // Clones share the buffers: they outlive both this tidy and the tape's own copies.
      const [a] = node.saved as [tf.Tensor];
      deferred.keep(weight.id, tf.keep(tf.clone(a)), tf.keep(tf.clone(dys[0]!)));
      kept.add(weight.id);
    }
    for (const [name, input] of Object.entries(node.inputs)) {
      if (deferWeight && name === 'b') continue;
      const gradientOf = inputGradients[name];
      if (!gradientOf) throw new Error(`cannot backprop through input ${name} of ${node.kernelName}`);
      const dx = tf.tidy(gradientOf);
      if (dx.dtype !== 'float32') throw new Error(`gradient of ${node.kernelName} input ${name} has dtype ${dx.dtype}, expected float32`);
      if (!tf.util.arraysEqual(dx.shape, input.shape)) {
        throw new Error(`gradient of ${node.kernelName} input ${name} has shape [${dx.shape.join(', ')}], the input [${input.shape.join(', ')}]`);
      }
      const previous = gradients[input.id];
      gradients[input.id] = previous ? tf.add(previous, dx) : dx;
      // The seed may be the caller's tensor: never dispose it here.
      if (previous && previous !== seed) previous.dispose();
    }
  }
}
