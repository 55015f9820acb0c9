import type * as tf from '@tensorflow/tfjs';
import type { RingCollective } from '../allreduce/ring-collective.js';
import type { GradientExchange } from '../trainer/train-step.js';
import { SessionGradientExchange } from './session-exchange.js';

/**
 * Kept for the distillation student's ring (peer/distillation/student-training.ts): the session's
 * exchange without compression and with a fixed slice share. New code uses SessionGradientExchange.
 */
export class RingGradientExchange {
  private readonly inner: SessionGradientExchange;

  constructor(collective: RingCollective, model: tf.LayersModel, sliceFraction: number) {
    this.inner = new SessionGradientExchange(collective, model, { compress: 'none', seed: 0 });
    this.inner.share = sliceFraction;
  }

  get stopRequested(): boolean {
    return this.inner.stopRequested;
  }

  set stopRequested(value: boolean) {
    this.inner.stopRequested = value;
  }

  get stopAgreed(): boolean {
    return this.inner.stopAgreed;
  }

  /** Bytes this rank sent in the last exchange. */
  get bytesPerExchange(): number {
    return this.inner.wireBytes;
  }

  get exchange(): GradientExchange {
    return this.inner.exchange;
  }
}
