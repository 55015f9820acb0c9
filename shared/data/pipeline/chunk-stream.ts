import type { BatchPosition } from '../batch.js';
import type { ChunkLayout, ChunkRange } from './chunk-layout.js';
import type { Chunk, ComputeChunk } from './element-compute.js';
import { epochIndexOrder, type IndexStage } from './index-order.js';
import type { ItemOutcome } from './run-stages.js';

export interface ComputedChunk {
  chunk: Chunk;
  outcomes: ItemOutcome[];
}

/**
 * Cuts epoch after epoch (from a start position) into chunks and computes them with up to
 * `window` chunks in flight, handing results back strictly in order: that is what keeps the
 * batches identical whatever the number of threads or their timing.
 */
export class ChunkStream {
  private epoch: number;
  private order: Uint32Array;
  private ranges: Iterator<ChunkRange>;
  private peeked: IteratorResult<ChunkRange> | undefined;
  private readonly inFlight: Promise<ComputedChunk>[] = [];

  constructor(
    private readonly sourceSize: number,
    private readonly indexStages: readonly IndexStage[],
    private readonly layout: ChunkLayout,
    private readonly compute: ComputeChunk,
    private readonly window: number,
    start: BatchPosition,
  ) {
    this.epoch = start.epoch;
    this.order = epochIndexOrder(sourceSize, indexStages, this.epoch);
    this.ranges = this.rangesOf(start.index);
  }

  next(): Promise<ComputedChunk> {
    while (this.inFlight.length < this.window) this.startNext();
    return this.inFlight.shift()!;
  }

  private rangesOf(from: number): Iterator<ChunkRange> {
    return this.layout(this.order.length, from)[Symbol.iterator]();
  }

  private pull(): IteratorResult<ChunkRange> {
    const range = this.peeked ?? this.ranges.next();
    this.peeked = undefined;
    return range;
  }

  private startNext(): void {
    let range = this.pull();
    // An epoch with nothing left for this peer (resumed at its very end) moves on to the next one;
    // the iterator has checked that a whole epoch is never empty.
    while (range.done) {
      this.epoch++;
      this.order = epochIndexOrder(this.sourceSize, this.indexStages, this.epoch);
      this.ranges = this.rangesOf(0);
      range = this.pull();
    }
    const { start, end, batchEnd } = range.value;
    this.peeked = this.ranges.next();
    const last = Boolean(this.peeked.done);
    const chunk: Chunk = { epoch: this.epoch, start, samples: this.order.slice(start, end), last, batchEnd };
    const computed = this.compute(chunk).then((outcomes) => ({ chunk, outcomes }));
    // Awaited later in order; until then a failure must not count as an unhandled rejection.
    computed.catch(() => undefined);
    this.inFlight.push(computed);
  }
}
