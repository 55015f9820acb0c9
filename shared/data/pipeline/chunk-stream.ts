import type { BatchPosition } from '../epoch-batches.js';
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
  private index: number;
  private order: Uint32Array;
  private readonly inFlight: Promise<ComputedChunk>[] = [];

  constructor(
    private readonly sourceSize: number,
    private readonly indexStages: readonly IndexStage[],
    private readonly chunkSize: number,
    private readonly compute: ComputeChunk,
    private readonly window: number,
    start: BatchPosition,
  ) {
    this.epoch = start.epoch;
    this.index = start.index;
    this.order = epochIndexOrder(sourceSize, indexStages, this.epoch);
  }

  next(): Promise<ComputedChunk> {
    while (this.inFlight.length < this.window) this.startNext();
    return this.inFlight.shift()!;
  }

  private startNext(): void {
    if (this.index >= this.order.length) {
      this.epoch++;
      this.index = 0;
      this.order = epochIndexOrder(this.sourceSize, this.indexStages, this.epoch);
    }
    const end = Math.min(this.index + this.chunkSize, this.order.length);
    const chunk: Chunk = { epoch: this.epoch, start: this.index, samples: this.order.slice(this.index, end), last: end === this.order.length };
    this.index = end;
    const computed = this.compute(chunk).then((outcomes) => ({ chunk, outcomes }));
    // Awaited later in order; until then a failure must not count as an unhandled rejection.
    computed.catch(() => undefined);
    this.inFlight.push(computed);
  }
}
