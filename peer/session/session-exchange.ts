import type * as tf from '@tensorflow/tfjs';
import type { RingCollective } from '../allreduce/ring-collective.js';
import { createReducer, type Compression } from '../compression/create-reducer.js';
import { createGradientExchange, type ExchangeReport } from '../data-parallel/gradient-exchange.js';
import { fusedLayout } from '../data-parallel/fused-layout.js';
import { GradientFusion } from '../data-parallel/gradient-fusion.js';
import type { GradientExchange } from '../trainer/train-step.js';

/** How gradients travel in a cluster job (the job file's `compress`, `bucketMiB`, `powerSgdRank`). */
export interface ExchangeSettings {
  compress: Compression;
  /** Reduce in buckets of this many bytes as they are copied out (fp16 and none); absent: one fused buffer. */
  bucketBytes?: number;
  powerSgdRank?: number;
  /** Seeds PowerSGD's initial Q matrices (the same on every rank). */
  seed: number;
}

/** The control entry that carries "a member asked to stop" through the step's all-reduce. */
const STOP_FLAG = 'ringpipe:stop-requested';

/**
 * The session's gradient exchange: the data-parallel exchange (fused buffer, buckets, fp16 or
 * PowerSGD with error feedback) plus one control element, the stop flag. Each rank weights its
 * slice's mean gradient by `share` (slice size / global batch), so the sum is the exact global-batch
 * mean even when slices differ by one sample. The flag is summed unweighted: its sum is the same on
 * every rank, so all stop after the very same step without another round trip.
 *
 * Compression state (fp16 residuals, PowerSGD's Q and error) lives in this object, one per
 * membership epoch: a new epoch starts it afresh on every rank alike, so replicas stay identical.
 */
export class SessionGradientExchange {
  readonly exchange: GradientExchange;
  /** Set when the coordinator asks this epoch to stop; travels in the next all-reduce. */
  stopRequested = false;
  /** This step's share of the global batch; set before each step. */
  share = 1;
  private readonly fusion: GradientFusion;
  private report: ExchangeReport = { ms: 0, wireBytes: 0, fp32Bytes: 0 };
  private stopAgreedValue = false;

  constructor(ring: RingCollective, model: tf.LayersModel, settings: ExchangeSettings) {
    const variables = model.trainableWeights.map((weight) => {
      // Gradients come keyed by the underlying variables' names (see trainStep).
      const variable = weight.read() as tf.Variable;
      return { name: variable.name, shape: [...variable.shape] };
    });
    const layout = fusedLayout([...variables, { name: STOP_FLAG, shape: [1], control: true }], settings.bucketBytes);
    this.fusion = new GradientFusion(layout);
    const reducer = createReducer(settings.compress, layout, { seed: settings.seed, ...(settings.powerSgdRank ? { powerSgdRank: settings.powerSgdRank } : {}) });
    const exchange = createGradientExchange({
      ring,
      fusion: this.fusion,
      reducer,
      share: () => this.share,
      onReport: (report) => (this.report = report),
      control: () => (this.stopRequested ? 1 : 0),
    });
    this.exchange = async (grads) => {
      const averaged = await exchange(grads);
      // Any member's 1 makes the sum ≥ 1; 0.5 leaves room for rounding of a compressed sum.
      this.stopAgreedValue = this.fusion.control(STOP_FLAG) > 0.5;
      return averaged;
    };
  }

  /** After an exchange: did any member ask to stop after this step? */
  get stopAgreed(): boolean {
    return this.stopAgreedValue;
  }

  /** Bytes this rank put on the wire in the last exchange (compressed, if compressing). */
  get wireBytes(): number {
    return this.report.wireBytes;
  }

  /** What the last exchange would have sent uncompressed. */
  get fp32Bytes(): number {
    return this.report.fp32Bytes;
  }
}
