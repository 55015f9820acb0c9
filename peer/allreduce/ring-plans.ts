import { chunkOf, chunksPerSegment, mod, segmentOf, type Region } from './partition.js';
import type { StreamPlan } from './ring-stream.js';

export type ReduceOp = 'sum' | 'mean';

/**
 * Ring all-reduce, bandwidth-optimal: each rank sends and receives 2(N−1)/N of the buffer.
 * Global step s ∈ [0, 2N−2): rank r sends segment (r−s) mod N and receives segment (r−s−1) mod N.
 * Steps 0..N−2 are the reduce-scatter (received chunks are added), after which rank r holds the
 * total of segment (r+1) mod N; steps N−1..2N−3 are the all-gather (received chunks are copied).
 * What a rank sends at step s is exactly what it received at step s−1, chunk by chunk, so chunk c
 * can be forwarded as soon as it has been reduced: the stream is pipelined in chunks.
 */
export function allReducePlan(args: {
  rank: number;
  worldSize: number;
  length: number;
  chunkElements: number;
  /** Runs on the segment this rank finishes reducing, before it is shared (averaging, rounding). */
  finishSegment: (region: Region) => void;
  /** Runs before a partial sum (a reduce-scatter chunk) is encoded and sent. */
  beforePartialSend?: (region: Region) => void;
}): StreamPlan {
  const { rank, worldSize: n, length } = args;
  const chunks = chunksPerSegment(length, n, args.chunkElements);
  const frames = 2 * (n - 1) * chunks;
  const region = (segment: number, frame: number): Region => chunkOf(segmentOf(length, n, mod(segment, n)), chunks, frame % chunks);
  const stepOf = (frame: number): number => Math.floor(frame / chunks);
  return {
    sendFrames: frames,
    receiveFrames: frames,
    sendRegion: (frame) => region(rank - stepOf(frame), frame),
    sendAfterReceived: (frame) => (stepOf(frame) === 0 ? 0 : frame - chunks + 1),
    receiveRegion: (frame) => region(rank - stepOf(frame) - 1, frame),
    receiveMode: (frame) => (stepOf(frame) < n - 1 ? 'add' : 'copy'),
    afterReceive: (frame, received) => {
      if (stepOf(frame) === n - 2) args.finishSegment(received);
    },
    ...(args.beforePartialSend
      ? {
          beforeSend: (frame: number, sent: Region) => {
            if (stepOf(frame) < n - 1) args.beforePartialSend!(sent);
          },
        }
      : {}),
  };
}

/**
 * Ring all-gather: rank r starts with segment r (of the same N-way split as the all-reduce) filled
 * in; at step t it sends segment (r−t) mod N and receives segment (r−t−1) mod N.
 */
export function allGatherPlan(args: { rank: number; worldSize: number; length: number; chunkElements: number }): StreamPlan {
  const { rank, worldSize: n, length } = args;
  const chunks = chunksPerSegment(length, n, args.chunkElements);
  const frames = (n - 1) * chunks;
  const region = (segment: number, frame: number): Region => chunkOf(segmentOf(length, n, mod(segment, n)), chunks, frame % chunks);
  const stepOf = (frame: number): number => Math.floor(frame / chunks);
  return {
    sendFrames: frames,
    receiveFrames: frames,
    sendRegion: (frame) => region(rank - stepOf(frame), frame),
    sendAfterReceived: (frame) => (stepOf(frame) === 0 ? 0 : frame - chunks + 1),
    receiveRegion: (frame) => region(rank - stepOf(frame) - 1, frame),
    receiveMode: () => 'copy',
  };
}

/**
 * Pipelined chain broadcast root → root+1 → … → root−1: each rank forwards chunk c as soon as it
 * has it, so the time is one buffer transfer plus (N−2) chunk transfers, not N−1 buffer transfers.
 */
export function broadcastPlan(args: { rank: number; worldSize: number; length: number; chunkElements: number; root: number }): StreamPlan {
  const { worldSize: n, length } = args;
  const distance = mod(args.rank - args.root, n);
  const chunks = Math.max(1, Math.ceil(length / args.chunkElements));
  const whole: Region = { start: 0, end: length };
  const region = (frame: number): Region => chunkOf(whole, chunks, frame);
  return {
    sendFrames: distance === n - 1 ? 0 : chunks,
    receiveFrames: distance === 0 ? 0 : chunks,
    sendRegion: region,
    sendAfterReceived: (frame) => (distance === 0 ? 0 : frame + 1),
    receiveRegion: region,
    receiveMode: () => 'copy',
  };
}
