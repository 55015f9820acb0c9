/** One run of consecutive positions of an epoch's order to compute together. */
export interface ChunkRange {
  start: number;
  end: number;
  /** Set on the chunk that completes this peer's slice of a global batch (split mode). */
  batchEnd?: number;
}

/** Which positions of an epoch this peer computes, cut into chunks, from a start position on. */
export type ChunkLayout = (epochLength: number, from: number) => Iterable<ChunkRange>;

/** Every position, in chunks of `chunkSize`: the usual, unsplit pipeline. */
export function contiguousLayout(chunkSize: number): ChunkLayout {
  return function* (epochLength, from) {
    for (let start = from; start < epochLength; start += chunkSize) yield { start, end: Math.min(start + chunkSize, epochLength) };
  };
}

/** Rank r's contiguous part [start, end) of a global batch of `size` shared by `world` peers. */
export function sliceOfGlobalBatch(size: number, rank: number, world: number): { start: number; end: number } {
  return { start: Math.floor((rank * size) / world), end: Math.floor(((rank + 1) * size) / world) };
}

/**
 * Only this rank's slice of each full global batch (the partial one at the end of an epoch is
 * dropped), in chunks of `chunkSize`. `from` must be the start of a global batch.
 */
export function splitLayout(globalBatch: number, rank: number, world: number, chunkSize: number): ChunkLayout {
  const slice = sliceOfGlobalBatch(globalBatch, rank, world);
  return function* (epochLength, from) {
    for (let batchStart = from; batchStart + globalBatch <= epochLength; batchStart += globalBatch) {
      const end = batchStart + slice.end;
      for (let start = batchStart + slice.start; start < end; start += chunkSize) {
        const chunkEnd = Math.min(start + chunkSize, end);
        yield chunkEnd === end ? { start, end: chunkEnd, batchEnd: batchStart + globalBatch } : { start, end: chunkEnd };
      }
    }
  };
}
