import { Float32Codec } from './float32-codec.js';
import type { RingChannel } from './ring-channel.js';
import { allReducePlan } from './ring-plans.js';
import { allocateRingBuffer } from './ring-collective.js';
import { runRingStream } from './ring-stream.js';

/**
 * V8 compiles a function to optimised code only after it has run for a while. The ring's per-frame
 * code (send and receive loops, frame reader, the socket stream code of Node under them) runs about
 * 100 times per 64 MiB all-reduce at 1 MiB chunks, so on its own it stays in V8's baseline tiers for
 * the first 20–30 large all-reduces of a process and costs about twice the user CPU per frame
 * (4 peers, 64 MiB: 22–25 ms of user CPU per all-reduce after 3 or 10 all-reduces, 12–13 ms after
 * 30; docs/benchmarks.md). So a ring warms its data plane once, when it is joined: one all-reduce of
 * a small buffer cut into many tiny chunks, through the very code every collective uses.
 */

/**
 * Tiny frames each rank sends (and receives) while warming. The whole warm-up costs ≈ 0.5–1.3 s of
 * one thread for all ranks together (2 and 4 ranks in one process), the first time in a process most.
 */
export const DEFAULT_WARM_UP_FRAMES = 4096;

/** Collective numbers (one per warm-up all-reduce) no real collective uses before wrapping around 2^32 operations. */
export const WARM_UP_OP = 0xffff_fff0;

/** Tiny chunks: many frames for few bytes. At least 64 floats, so the SIMD add path runs too. */
const TINY_CHUNK_ELEMENTS = 64;
/**
 * Before and after the tiny frames, two all-reduces in chunks of the default size (or the largest
 * frame the channel takes): their frames take the paths small ones never do (reads that return part
 * of a frame, writes the kernel finishes later). Code optimised without having seen those paths is thrown away on the first large frame
 * and V8 waits long before optimising it again, so the warm-up must cover them.
 */
const LARGE_CHUNK_ELEMENTS = (1024 * 1024) / 4;

let warmUpBuffer: Float32Array | undefined;

/**
 * Runs the warm-up all-reduces over `channel`. Every rank of the ring must call it with the same
 * `frames` right after joining, before any collective (a rank that skips it is out of step).
 */
export async function warmUpRing(channel: RingChannel, membership: { rank: number; worldSize: number }, options: { frames: number; maxInFlight: number; timeoutMs: number }): Promise<void> {
  const { rank, worldSize } = membership;
  if (worldSize < 2 || options.frames <= 0) return;
  const stepsPerAllReduce = 2 * (worldSize - 1);
  const large = Math.max(TINY_CHUNK_ELEMENTS, Math.min(LARGE_CHUNK_ELEMENTS, Math.floor((channel.maxFrameBytes ?? Infinity) / 4)));
  const phases = [
    { chunkElements: large, chunks: 2 },
    { chunkElements: TINY_CHUNK_ELEMENTS, chunks: Math.max(1, Math.ceil(options.frames / stepsPerAllReduce)) },
    { chunkElements: large, chunks: 2 },
  ];
  const buffer = ringScratch(Math.max(...phases.map((phase) => worldSize * phase.chunks * phase.chunkElements)));
  for (const [index, { chunkElements, chunks }] of phases.entries()) {
    const length = worldSize * chunks * chunkElements;
    const values = buffer.subarray(0, length);
    values.fill(0);
    const plan = allReducePlan({ rank, worldSize, length, chunkElements, finishSegment: () => {} });
    await runRingStream(channel, plan, values, { op: WARM_UP_OP + index, codec: new Float32Codec(), timeoutMs: options.timeoutMs, maxInFlight: options.maxInFlight, scratch: [] });
  }
}

/** One buffer per process in the ring arena (where real ring buffers live), grown when needed. */
function ringScratch(length: number): Float32Array {
  if (!warmUpBuffer || warmUpBuffer.length < length) warmUpBuffer = allocateRingBuffer(length);
  return warmUpBuffer;
}
