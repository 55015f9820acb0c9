/** One run of consecutive positions of an epoch's order to compute together. */
export interface ChunkRange {
  start: number;
  end: number;
  /**
   * Set on the chunk that completes this peer's slice of a global batch (split mode), else
   * undefined. Always present, so every range object has the same shape (see below).
   */
  batchEnd: number | undefined;
}

/** Which positions of an epoch this peer computes, cut into chunks, from a start position on. */
export type ChunkLayout = (epochLength: number, from: number) => Iterable<ChunkRange>;

// The generators are module-level functions, not closures made per layout: V8 gives each generator
// function object its own map for the iterators it makes, so a closure per pipeline (an evaluation
// makes one every time) showed the training loop a new iterator map each time, which threw away its
// optimised code and recompiled it after every evaluation.

function* contiguousRanges(chunkSize: number, epochLength: number, from: number): Generator<ChunkRange> {
  for (let start = from; start < epochLength; start += chunkSize) yield { start, end: Math.min(start + chunkSize, epochLength), batchEnd: undefined };
}

/** Every position, in chunks of `chunkSize`: the usual, unsplit pipeline. */
export function contiguousLayout(chunkSize: number): ChunkLayout {
  return (epochLength, from) => contiguousRanges(chunkSize, epochLength, from);
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
  return (epochLength, from) => splitRanges(globalBatch, slice, chunkSize, epochLength, from);
}

function* splitRanges(globalBatch: number, slice: { start: number; end: number }, chunkSize: number, epochLength: number, from: number): Generator<ChunkRange> {
  for (let batchStart = from; batchStart + globalBatch <= epochLength; batchStart += globalBatch) {
    const end = batchStart + slice.end;
    for (let start = batchStart + slice.start; start < end; start += chunkSize) {
      const chunkEnd = Math.min(start + chunkSize, end);
      yield { start, end: chunkEnd, batchEnd: chunkEnd === end ? batchStart + globalBatch : undefined };
    }
  }
}
