import * as tf from '@tensorflow/tfjs';
import type { RingCollective } from '../allreduce/ring-collective.js';
import type { GradientExchange } from '../trainer/train-step.js';

/**
 * Averages gradients over the global batch with one ring all-reduce per step. Each peer scales its
 * slice's mean gradient by (slice size / global batch), so the sum is the exact global-batch mean
 * even when slices differ by one sample. One extra element carries "a member asked to stop": its
 * sum is the same on every rank, so all stop after the very same step without another round trip.
 */
export class RingGradientExchange {
  private readonly buffer: Float32Array;
  private readonly variables: { name: string; shape: number[]; size: number }[];
  private stopAgreedValue = false;
  /** Set when the coordinator asks this epoch to stop; travels in the next all-reduce. */
  stopRequested = false;

  constructor(
    private readonly collective: RingCollective,
    model: tf.LayersModel,
    private readonly sliceFraction: number,
  ) {
    this.variables = model.trainableWeights.map((weight) => {
      const variable = weight.read() as tf.Variable;
      return { name: variable.name, shape: [...variable.shape], size: variable.size };
    });
    const elements = this.variables.reduce((sum, v) => sum + v.size, 0);
    this.buffer = new Float32Array(elements + 1);
  }

  /** Bytes this rank sends per exchange: a ring all-reduce sends 2 (n − 1) / n of the buffer. */
  get bytesPerExchange(): number {
    const n = this.collective.worldSize;
    return Math.round((2 * (n - 1) * this.buffer.byteLength) / n);
  }

  /** After an exchange: did any member ask to stop after this step? */
  get stopAgreed(): boolean {
    return this.stopAgreedValue;
  }

  readonly exchange: GradientExchange = async (grads) => {
    const buffer = this.buffer;
    let offset = 0;
    try {
      for (const variable of this.variables) {
        const grad = grads[variable.name];
        if (!grad) throw new Error(`no gradient for ${variable.name}`);
        const values = grad.dataSync() as Float32Array;
        const scale = this.sliceFraction;
        for (let i = 0; i < values.length; i++) buffer[offset + i] = values[i]! * scale;
        offset += variable.size;
      }
    } finally {
      // We own the incoming gradients; a failed exchange must not leak them.
      tf.dispose(grads);
    }
    buffer[offset] = this.stopRequested ? 1 : 0;
    await this.collective.allReduce(buffer, { op: 'sum' });
    this.stopAgreedValue = buffer[offset]! > 0;
    const averaged: tf.NamedTensorMap = {};
    offset = 0;
    for (const variable of this.variables) {
      averaged[variable.name] = tf.tensor(buffer.slice(offset, offset + variable.size), variable.shape);
      offset += variable.size;
    }
    return averaged;
  };
}
