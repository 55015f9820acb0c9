import type { Batch } from '../batch.js';
import { createLogger, type Logger } from '../../log/logger.js';
import type { ChunkStream, ComputedChunk } from './chunk-stream.js';
import { DataError, type OnBadRecord, type SkippedRecord } from './data-error.js';
import type { BatchSettings } from './plan.js';
import type { PipelinePosition } from './position.js';

/** A batch plus where it came from and where to resume after it. */
export interface PipelineBatch extends Batch {
  /** Epoch of the batch's first sample. */
  epoch: number;
  /** Position just after this batch: save it in a checkpoint to resume with the next batch. */
  position: PipelinePosition;
  /** Source index of each sample, in batch order (to look up per-sample data kept beside the pipeline, e.g. soft targets). */
  sampleIndices: Uint32Array;
}

export interface SkipStats {
  /** Samples a map stage failed on and skipped (onError: 'skip'), counted once per visit. */
  skipped: number;
  /** The first few, for the log and for the user. */
  examples: SkippedRecord[];
}

const MAX_EXAMPLES = 20;
let defaultLog: Logger | undefined;

/**
 * Consumes computed chunks in order and stacks samples into batches: applies each failed
 * sample's onError policy, drops or keeps the partial batch at the end of an epoch, and checks
 * every sample has the shape of the first.
 */
export class BatchAssembler {
  private pending: ComputedChunk | undefined;
  private offset = 0;
  private featureCount: number | undefined;
  private batchesThisEpoch = 0;
  private epochFromStart: boolean;
  readonly stats: SkipStats = { skipped: 0, examples: [] };
  private readonly log: Logger;

  constructor(
    private readonly chunks: ChunkStream,
    private readonly settings: BatchSettings,
    private readonly onErrorOfStage: readonly OnBadRecord[],
    private readonly sourceName: string,
    private readonly pipeline: string,
    start: PipelinePosition,
    log?: Logger,
  ) {
    this.epochFromStart = start.index === 0;
    this.log = log ?? (defaultLog ??= createLogger('data'));
  }

  async nextBatch(): Promise<PipelineBatch> {
    const xs: Float32Array[] = [];
    const labels: number[] = [];
    const indices: number[] = [];
    let epoch: number | undefined;
    let position: PipelinePosition | undefined;
    for (;;) {
      if (!this.pending || this.offset === this.pending.outcomes.length) {
        if (this.pending?.chunk.last) {
          const keepPartial = xs.length > 0 && !this.settings.dropRemainder;
          if (keepPartial) this.batchesThisEpoch++;
          this.endEpoch(this.pending.chunk.epoch);
          this.pending = undefined;
          if (keepPartial) break;
          xs.length = 0;
          labels.length = 0;
          indices.length = 0;
          epoch = undefined;
        }
        this.pending = await this.chunks.next();
        this.offset = 0;
        continue;
      }
      const { chunk, outcomes } = this.pending;
      const outcome = outcomes[this.offset]!;
      const sampleIndex = chunk.samples[this.offset]!;
      this.offset++;
      epoch ??= chunk.epoch;
      position = { epoch: chunk.epoch, index: chunk.start + this.offset, pipeline: this.pipeline };
      if (!outcome.ok) {
        this.skipOrThrow(outcome.error, this.onErrorOfStage[outcome.stage] ?? 'error');
      } else {
        const x = this.checkSample(outcome.value, sampleIndex);
        xs.push(x.x);
        labels.push(x.label);
        indices.push(sampleIndex);
      }
      // split(): the batch is this peer's slice of a global batch, complete when its last chunk is consumed.
      const sliceDone = chunk.batchEnd !== undefined && this.offset === outcomes.length;
      if (sliceDone) position = { epoch: chunk.epoch, index: chunk.batchEnd!, pipeline: this.pipeline };
      if (sliceDone || xs.length === this.settings.size) {
        this.batchesThisEpoch++;
        break;
      }
    }
    return { ...stack(xs, labels, this.featureCount ?? 0), epoch: epoch!, position: position!, sampleIndices: Uint32Array.from(indices) };
  }

  private endEpoch(epoch: number): void {
    if (this.batchesThisEpoch === 0 && this.epochFromStart) {
      const first = this.stats.examples[0];
      throw new DataError(`epoch ${epoch} of ${this.sourceName} produced no batch of ${this.settings.size}: ${this.stats.skipped} samples were skipped${first ? ` (first: ${first.problem})` : ''}. Fix the data or use a smaller batch.`);
    }
    this.batchesThisEpoch = 0;
    this.epochFromStart = true;
  }

  private skipOrThrow(problem: string, policy: OnBadRecord): void {
    if (policy === 'error') throw new DataError(problem);
    this.stats.skipped++;
    const where = problem.split(': ')[0] ?? '';
    if (this.stats.examples.length < MAX_EXAMPLES) {
      this.stats.examples.push({ where, problem });
      this.log.warn({ skipped: this.stats.skipped }, `skipped: ${problem}`);
    }
  }

  /** Names a sample in an error; built only when something is wrong (a string per good sample was garbage). */
  private sampleName(sampleIndex: number): string {
    return `${this.sourceName} sample ${sampleIndex}`;
  }

  private checkSample(value: unknown, sampleIndex: number): { x: Float32Array; label: number } {
    const sample = value as { x?: unknown; label?: unknown };
    if (typeof sample !== 'object' || sample === null || !(sample.x instanceof Float32Array)) {
      throw new DataError(`${this.sampleName(sampleIndex)}: batch() needs samples { x: Float32Array, label: number }; got ${describe(value)}. End the pipeline with a map that produces them (e.g. scalePixels for images).`);
    }
    if (!Number.isInteger(sample.label) || (sample.label as number) < 0) throw new DataError(`${this.sampleName(sampleIndex)}: label must be a class index (a whole number ≥ 0), got ${String(sample.label)}.`);
    this.featureCount ??= sample.x.length;
    if (sample.x.length !== this.featureCount) {
      throw new DataError(`${this.sampleName(sampleIndex)}: ${sample.x.length} features, but earlier samples have ${this.featureCount}. Resize or crop every sample to the same shape.`);
    }
    return { x: sample.x, label: sample.label as number };
  }
}

function stack(xs: Float32Array[], labels: number[], featureCount: number): Batch {
  const flat = new Float32Array(xs.length * featureCount);
  xs.forEach((x, i) => flat.set(x, i * featureCount));
  return { xs: flat, labels: Int32Array.from(labels), size: xs.length };
}

function describe(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? String(value);
  return `{ ${Object.entries(value)
    .map(([k, v]) => `${k}: ${ArrayBuffer.isView(v) ? v.constructor.name : typeof v}`)
    .join(', ')} }`;
}
