import type { Logger } from '../../log/logger.js';
import { StallMeter, type StallMeterOptions } from '../stall-meter.js';
import { BatchAssembler, type PipelineBatch, type SkipStats } from './batch-assembler.js';
import { contiguousLayout, splitLayout } from './chunk-layout.js';
import { ChunkStream } from './chunk-stream.js';
import { DataError, type OnBadRecord } from './data-error.js';
import { composeElementStages, type ElementComputation } from './element-compute.js';
import { epochLength } from './index-order.js';
import { describeOrder, type BatchedPlan } from './plan.js';
import { checkStartPosition, type PipelinePosition } from './position.js';

export interface IterateOptions {
  /** Resume here (a `position` saved from an earlier iterator); default: epoch 0, index 0. */
  start?: PipelinePosition;
  stall?: StallMeterOptions;
  log?: Logger;
}

/**
 * Batches, epoch after epoch, forever: the trainer decides when to stop. Call `close()` when
 * done (it drops its queued work in the worker threads, which stay for the next pipeline; a
 * forgotten iterator still never keeps the process alive).
 */
export class DataIterator implements AsyncIterable<PipelineBatch> {
  /** Time the trainer waits in `next()`, as a share of its step time. */
  readonly stall: StallMeter;
  /** Samples per epoch for this shard. */
  readonly epochSamples: number;
  private readonly computation: ElementComputation;
  private readonly assembler: BatchAssembler;
  private readonly ready: Promise<PipelineBatch>[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private current: PipelinePosition;
  private closed = false;
  private previousCall: { startedAt: number; waitMs: number } | undefined;
  private steps = 0;
  readonly pipeline: string;

  constructor(
    private readonly plan: BatchedPlan,
    options: IterateOptions = {},
  ) {
    this.pipeline = describeOrder(plan);
    const start = options.start ?? { epoch: 0, index: 0 };
    checkStartPosition(start, this.pipeline);
    this.epochSamples = epochLength(plan.source.size, plan.indexStages);
    if (start.index > this.epochSamples) throw new DataError(`cannot resume at sample ${start.index} of epoch ${start.epoch}: an epoch of this pipeline has only ${this.epochSamples} samples.`);
    if (this.batchesPerEpoch === 0) {
      throw new DataError(`${plan.source.name}: an epoch has ${this.epochSamples} samples${plan.indexStages.some((s) => s.kind === 'shard') ? ' in this shard' : ''}, fewer than one batch of ${plan.batch.size}. Use a smaller batch, or keep the partial batch (batch(n, { dropRemainder: false })).`);
    }
    this.current = { ...start, pipeline: this.pipeline };
    this.stall = new StallMeter({ ...(options.log ? { log: options.log } : {}), ...options.stall });
    const { size, chunkSize } = plan.batch;
    if (plan.split && start.index % size !== 0) {
      throw new DataError(`cannot resume a split() pipeline at sample ${start.index}: it resumes at the start of a global batch (a multiple of ${size}), as its own positions are.`);
    }
    this.computation = composeElementStages(plan);
    const window = this.computation.parallel > 0 ? 2 * this.computation.parallel + 1 : 1;
    const layout = plan.split ? splitLayout(size, plan.split.rank, plan.split.world, chunkSize) : contiguousLayout(chunkSize);
    const chunks = new ChunkStream(plan.source.size, plan.indexStages, layout, this.computation.compute, window, start);
    const onError: OnBadRecord[] = plan.elementStages.map((s) => (s.kind === 'map' ? s.onError : 'error'));
    this.assembler = new BatchAssembler(chunks, plan.batch, onError, plan.source.name, this.pipeline, start, options.log);
    this.topUp();
  }

  /** Full batches per epoch (plus a partial one when kept), assuming no sample is skipped. */
  get batchesPerEpoch(): number {
    const { size, dropRemainder } = this.plan.batch;
    return dropRemainder ? Math.floor(this.epochSamples / size) : Math.ceil(this.epochSamples / size);
  }

  /** Just after the last batch `next()` returned: what to save in a checkpoint. */
  get position(): PipelinePosition {
    return { ...this.current };
  }

  get skipStats(): SkipStats {
    return this.assembler.stats;
  }

  /** The next batch. Rejects with a DataError (file, line, what to do) on bad input. */
  async next(): Promise<PipelineBatch> {
    const startedAt = performance.now();
    this.recordPreviousStep(startedAt);
    if (this.closed) throw new Error('next() on a closed data iterator');
    const batch = this.ready.shift() ?? this.produce();
    this.topUp();
    const result = await batch;
    this.current = result.position;
    this.previousCall = { startedAt, waitMs: performance.now() - startedAt };
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ready.length = 0;
    await this.computation.close();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<PipelineBatch> {
    try {
      for (;;) yield await this.next();
    } finally {
      await this.close();
    }
  }

  private recordPreviousStep(now: number): void {
    const previous = this.previousCall;
    if (!previous) return;
    if (this.steps++ === 0) this.stall.recordWarmup(previous.waitMs);
    else this.stall.record(previous.waitMs, now - previous.startedAt);
  }

  /** Batches are assembled one after another (they consume the chunk stream in order). */
  private produce(): Promise<PipelineBatch> {
    const batch = this.tail.then(() => {
      if (this.closed) throw new Error('the data iterator was closed');
      return this.assembler.nextBatch();
    });
    this.tail = batch;
    batch.catch(() => undefined);
    return batch;
  }

  private topUp(): void {
    while (!this.closed && this.ready.length < this.plan.prefetch) this.ready.push(this.produce());
  }
}
