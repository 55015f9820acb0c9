import type { Region } from '../allreduce/partition.js';
import { allocateRingBuffer, type RingCollective } from '../allreduce/ring-collective.js';
import type { FusedLayout } from '../data-parallel/fused-layout.js';
import { Prng } from '../../shared/random/prng.js';
import { ringWireBytes, type GradientReducer, type ReduceStats } from './gradient-reducer.js';
import { applyLowRank, multiplyMQ, multiplyMtP } from './low-rank-kernels.js';
import { orthonormalizeColumns } from './orthonormalize.js';

export interface PowerSgdOptions {
  /** Rank of the approximation of each weight matrix. Default 4. */
  rank?: number;
  /** Seeds the initial Q matrices, which must be the same on every rank. */
  seed: number;
  /** Compress a matrix only if that shrinks it at least this much. Default 2. */
  minCompressionRate?: number;
}

interface CompressedMatrix {
  offset: number;
  rows: number;
  cols: number;
  rank: number;
  /** Where this matrix's P (rows×rank) sits in the P buffer, and its Q (cols×rank) in the Q buffer. */
  pOffset: number;
  qOffset: number;
  /** Q from the previous step (warm start), identical on every rank. */
  q: Float32Array;
}

/**
 * `--compress powersgd`: rank-r PowerSGD (Vogels, Karimireddy & Jaggi, NeurIPS 2019) with error
 * feedback. Each weight matrix M (biases and small matrices go uncompressed) is replaced by P̂Qᵀ with
 * one step of power iteration, warm-started from last step's Q:
 *   M += error;  P = M·Q;  all-reduce P (with the uncompressed values);  P̂ = orthonormalize(P);
 *   Q = Mᵀ·P̂;  all-reduce Q;  approximation A = P̂·Qᵀ;  error = M − share·A.
 * Both all-reduces are exact float32 sums of small buffers, so it still fits the ring, and every
 * rank ends with the same A. The per-rank errors add up to exactly what the approximation missed.
 */
export class PowerSgdReducer implements GradientReducer {
  readonly name = 'powersgd';
  readonly bucketed = false;
  private readonly matrices: CompressedMatrix[] = [];
  /** Uncompressed variables, travelling after the P's in the first all-reduce. */
  private readonly raw: { offset: number; size: number; pOffset: number }[] = [];
  private readonly pBuffer: Float32Array;
  private readonly qBuffer: Float32Array;
  private readonly error: Float32Array;

  constructor(layout: FusedLayout, options: PowerSgdOptions) {
    const wanted = options.rank ?? 4;
    const minRate = options.minCompressionRate ?? 2;
    if (!Number.isInteger(wanted) || wanted < 1) throw new Error(`PowerSGD rank must be a positive integer, got ${wanted}`);
    let pLength = 0;
    let qLength = 0;
    for (const [index, entry] of layout.entries.entries()) {
      const cols = entry.shape.length >= 2 ? entry.shape[entry.shape.length - 1]! : 1;
      const rows = entry.size / cols;
      const rank = Math.min(wanted, rows, cols);
      if (entry.shape.length >= 2 && (rows + cols) * rank * minRate <= rows * cols) {
        const q = new Float32Array(cols * rank);
        const prng = new Prng(options.seed * 7_919 + index);
        for (let i = 0; i < q.length; i++) q[i] = gaussian(prng);
        this.matrices.push({ offset: entry.offset, rows, cols, rank, pOffset: pLength, qOffset: qLength, q });
        pLength += rows * rank;
        qLength += cols * rank;
      }
    }
    for (const entry of layout.entries) {
      if (this.matrices.some((m) => m.offset === entry.offset)) continue;
      this.raw.push({ offset: entry.offset, size: entry.size, pOffset: pLength });
      pLength += entry.size;
    }
    this.pBuffer = allocateRingBuffer(pLength);
    this.qBuffer = allocateRingBuffer(qLength);
    this.error = new Float32Array(layout.length);
  }

  /** Floats on the wire per step versus the full gradient, e.g. for the docs. */
  get compressedElements(): number {
    return this.pBuffer.length + this.qBuffer.length;
  }

  async reduce(buffer: Float32Array, region: Region, ring: RingCollective, share: number): Promise<ReduceStats> {
    if (region.start !== 0 || region.end !== buffer.length) throw new Error('PowerSGD reduces the whole fused buffer at once');
    const n = ring.worldSize;
    for (const m of this.matrices) {
      const values = buffer.subarray(m.offset, m.offset + m.rows * m.cols);
      const error = this.error.subarray(m.offset, m.offset + m.rows * m.cols);
      for (let i = 0; i < values.length; i++) values[i] = values[i]! + error[i]!;
      multiplyMQ(values, m.rows, m.cols, m.q, m.rank, this.pBuffer.subarray(m.pOffset, m.pOffset + m.rows * m.rank));
    }
    for (const r of this.raw) this.pBuffer.set(buffer.subarray(r.offset, r.offset + r.size), r.pOffset);
    await ring.allReduce(this.pBuffer, { op: 'sum' });
    for (const r of this.raw) buffer.set(this.pBuffer.subarray(r.pOffset, r.pOffset + r.size), r.offset);
    for (const m of this.matrices) {
      const p = this.pBuffer.subarray(m.pOffset, m.pOffset + m.rows * m.rank);
      orthonormalizeColumns(p, m.rows, m.rank);
      const values = buffer.subarray(m.offset, m.offset + m.rows * m.cols);
      multiplyMtP(values, m.rows, m.cols, p, m.rank, this.qBuffer.subarray(m.qOffset, m.qOffset + m.cols * m.rank));
    }
    await ring.allReduce(this.qBuffer, { op: 'sum' });
    for (const m of this.matrices) {
      const p = this.pBuffer.subarray(m.pOffset, m.pOffset + m.rows * m.rank);
      m.q.set(this.qBuffer.subarray(m.qOffset, m.qOffset + m.cols * m.rank));
      const values = buffer.subarray(m.offset, m.offset + m.rows * m.cols);
      const error = this.error.subarray(m.offset, m.offset + m.rows * m.cols);
      applyLowRank(values, error, p, m.q, m.rows, m.cols, m.rank, share);
    }
    const fp32 = this.raw.reduce((sum, r) => sum + r.size, 0) + this.matrices.reduce((sum, m) => sum + m.rows * m.cols, 0);
    return { wireBytes: ringWireBytes(this.pBuffer.length, 4, n) + ringWireBytes(this.qBuffer.length, 4, n), fp32Bytes: ringWireBytes(fp32, 4, n) };
  }
}

/** Standard normal sample (Box–Muller) from the seeded generator. */
function gaussian(prng: Prng): number {
  const u = Math.max(prng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * prng.next());
}
