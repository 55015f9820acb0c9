/**
 * A stage's reusable tensor buffers, one per purpose and micro-batch, kept across mini-batches.
 * Fresh memory is slow to touch on this kind of machine (docs/benchmarks.md), and a stage moves
 * 2 · M tensors per mini-batch. A buffer of micro-batch m is free again by the next mini-batch: its
 * sends have drained (a step ends only then) and the tensors made from it are disposed by its
 * backward pass. Tensors of the cpu backend keep the array they were made from, which is why a
 * buffer is never shared between two micro-batches of one step.
 */
export type BufferPurpose = 'receive-activation' | 'receive-gradient' | 'send-activation' | 'send-gradient';

export class StageBuffers {
  private readonly buffers = new Map<string, Float32Array>();

  /** The buffer of `purpose` for micro-batch `micro`, of exactly `length` floats. */
  get(purpose: BufferPurpose, micro: number, length: number): Float32Array {
    const key = `${purpose}/${micro}`;
    let buffer = this.buffers.get(key);
    if (!buffer || buffer.length !== length) {
      buffer = new Float32Array(length);
      this.buffers.set(key, buffer);
    }
    return buffer;
  }
}
