/**
 * How a buffer is cut for the ring: N near-equal segments (one per rank, any length, lengths differ
 * by at most one element), each cut into the same number of chunks so that chunk c of every segment
 * is one pipeline slot. Pure arithmetic, shared by every rank so all agree on every boundary.
 */
export interface Region {
  /** First element (inclusive). */
  start: number;
  /** One past the last element. */
  end: number;
}

/** Segment `index` of `parts` over `length` elements. */
export function segmentOf(length: number, parts: number, index: number): Region {
  return { start: Math.floor((index * length) / parts), end: Math.floor(((index + 1) * length) / parts) };
}

/** Chunks per segment so that no chunk exceeds `chunkElements` (at least 1, even for empty segments). */
export function chunksPerSegment(length: number, parts: number, chunkElements: number): number {
  const longest = Math.ceil(length / parts);
  return Math.max(1, Math.ceil(longest / chunkElements));
}

/** Chunk `chunk` of `chunks` within `segment`; may be empty when the segment is shorter than `chunks`. */
export function chunkOf(segment: Region, chunks: number, chunk: number): Region {
  const size = segment.end - segment.start;
  return {
    start: segment.start + Math.floor((chunk * size) / chunks),
    end: segment.start + Math.floor(((chunk + 1) * size) / chunks),
  };
}

/** `value mod n` in [0, n), also for negative values. */
export function mod(value: number, n: number): number {
  return ((value % n) + n) % n;
}
