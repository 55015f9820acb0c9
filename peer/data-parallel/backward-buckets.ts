import type { Region } from '../allreduce/partition.js';
import type { FusedEntry, FusedLayout } from './fused-layout.js';

/** Part of one variable's gradient: whole, or rows [rowStart, rowEnd) of a 2-D weight [rows, cols]. */
export interface GradientPiece {
  entry: FusedEntry;
  rowStart: number;
  rowEnd: number;
  /** Where the piece sits in the fused buffer. */
  region: Region;
}

/** A bucket of the overlapped backward pass: reduced as soon as its pieces are in the buffer. */
export interface BackwardBucket {
  region: Region;
  /** In the order they are computed (last rows first). */
  pieces: GradientPiece[];
}

/**
 * Buckets in the order a backward pass finishes gradients: last layers first (PyTorch DDP's
 * reverse bucket order), each a contiguous region of the fused buffer of about `bucketBytes`. A
 * bucket closes once it holds `bucketBytes`; the 2-D weight that crosses the limit is cut between
 * rows, so one large weight (the mlp's 784×512 first layer: 1.5 MiB of its 2 MiB) becomes several
 * buckets whose transfers overlap the products of the next ones. Depends only on the layout, so every
 * rank makes the same all-reduce calls in the same order.
 */
export function backwardBuckets(layout: FusedLayout, bucketBytes: number): BackwardBucket[] {
  if (!(bucketBytes >= 4)) throw new Error(`bucket size must be at least 4 bytes, got ${bucketBytes}`);
  if (layout.entries.some((e) => e.control)) throw new Error('the overlapped backward pass does not carry control entries');
  const target = Math.max(1, Math.floor(bucketBytes / 4));
  const buckets: BackwardBucket[] = [];
  let open: BackwardBucket = { region: { start: layout.length, end: layout.length }, pieces: [] };
  const close = (): void => {
    if (open.pieces.length > 0) buckets.push(open);
    open = { region: { start: open.region.start, end: open.region.start }, pieces: [] };
  };
  for (let i = layout.entries.length - 1; i >= 0; i--) {
    const entry = layout.entries[i]!;
    const rows = entry.shape.length === 2 ? entry.shape[0]! : 1;
    const cols = entry.size / Math.max(1, rows);
    let rowEnd = rows;
    while (rowEnd > 0) {
      const room = target - (open.region.end - open.region.start);
      // Whole variables unless a 2-D weight crosses the limit: then as many rows as fit (at least one).
      const take = entry.shape.length === 2 && entry.size > room ? Math.min(rowEnd, Math.max(1, Math.ceil(room / cols))) : rowEnd;
      const rowStart = rowEnd - take;
      const region = { start: entry.offset + rowStart * cols, end: entry.offset + rowEnd * cols };
      open.pieces.push({ entry, rowStart, rowEnd, region });
      open.region.start = region.start;
      rowEnd = rowStart;
      if (open.region.end - open.region.start >= target) close();
    }
  }
  close();
  return buckets;
}
