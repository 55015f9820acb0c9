import { Float32Codec } from './float32-codec.js';
import { allocateShared } from './wasm-arena.js';
import { segmentOf, type Region } from './partition.js';
import type { RingChannel, RingMembership } from './ring-channel.js';
import { RingError } from './ring-errors.js';
import { allGatherPlan, allReducePlan, broadcastPlan, type ReduceOp } from './ring-plans.js';
import { runRingStream, type StreamPlan, type StreamStats } from './ring-stream.js';
import { scaleInPlace } from './reduce-kernels.js';
import type { WireCodec } from './wire-codec.js';

export interface RingOptions {
  /**
   * Uncompressed size of one pipeline chunk. Default: automatic (autoChunkBytes): 1 MiB, and for
   * large uncompressed buffers on a data plane that takes larger frames, up to 4 MiB.
   */
  chunkBytes?: number;
  /** How long to wait for any one frame from the previous rank. Default 30 s. */
  timeoutMs?: number;
  /** Sends in flight at once (2 = double buffering). Default 4. */
  maxInFlight?: number;
}

export interface AllReduceOptions {
  op?: ReduceOp;
  /** How chunks travel; default float32 as is. */
  codec?: WireCodec;
  /**
   * Error feedback for lossy codecs: what the codec drops from the values this rank sends (its
   * partial sums) and from the segment it finishes is added here, element by element (same length
   * as the buffer). Added to the next reduction's input, it makes the losses cancel over steps.
   */
  residual?: Float32Array;
  /**
   * Runs on each chunk of the segment this rank finishes reducing (the complete sum of those
   * elements, after `op`), before the all-gather shares it: what it writes there is what every rank
   * ends with. ZeRO-1 style, an optimizer turns the summed gradients of its segment into updated
   * weights here, and the all-gather carries weights. Raw float32 only (a lossy codec would round them).
   */
  onSegmentReduced?: (region: Region) => void;
}

export interface CollectiveStats extends StreamStats {
  kind: 'allReduce' | 'allGather' | 'broadcast';
  /** Sequence number of the collective. */
  op: number;
  elements: number;
  ms: number;
}

const MiB = 1024 * 1024;

/**
 * A buffer for collectives, allocated once and reused: in shared memory, so the threaded data plane
 * sends from it without a copy, and in the ring arena, so received chunks are added into it in place
 * with SIMD. Any Float32Array works with every collective; this one is the fastest. Never freed.
 */
export function allocateRingBuffer(length: number): Float32Array {
  const { buffer, byteOffset } = allocateShared(length * 4);
  return new Float32Array(buffer, byteOffset, length);
}
export const DEFAULT_CHUNK_BYTES = 1 * MiB;
/** The largest chunk the automatic choice takes. */
export const MAX_AUTO_CHUNK_BYTES = 4 * MiB;

/**
 * The default chunk for a buffer: 1 MiB, grown in powers of two while each rank's segment still
 * holds at least 4 chunks, up to 4 MiB and to what the data plane accepts (`maxFrameBytes`; a plane
 * that states no limit keeps 1 MiB). Why: every chunk costs a fixed amount of JavaScript on each side
 * (stream and promise bookkeeping around the socket), which at 4 peers on 2 cores is what separates
 * us from gloo; 4 chunks per segment keep sending, receiving and adding overlapped. gloo's chunked
 * ring likewise cuts large buffers into larger pieces (about buffer / 2N).
 * 64 MiB: 4 MiB chunks at 2 and 4 peers; 32 MiB at 4 peers: 2 MiB; ≤ 16 MiB at 4 peers: 1 MiB.
 */
export function autoChunkBytes(bufferBytes: number, worldSize: number, maxFrameBytes: number | undefined): number {
  const limit = Math.min(MAX_AUTO_CHUNK_BYTES, maxFrameBytes ?? DEFAULT_CHUNK_BYTES);
  let chunk = DEFAULT_CHUNK_BYTES;
  while (chunk * 2 <= limit && chunk * 2 * 4 <= bufferBytes / worldSize) chunk *= 2;
  return chunk;
}
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_IN_FLIGHT = 4;

/**
 * Collectives over a ring of ranks, in place on Float32Array buffers of any length. Calls run one at
 * a time in call order, and every rank must make the same calls in the same order. After a failure
 * (a dead link, a timeout, a rank out of step) the ring is broken: later calls reject, and the caller
 * builds a new ring (a new membership epoch).
 */
export class RingCollective {
  readonly rank: number;
  readonly worldSize: number;
  private readonly channel: RingChannel | undefined;
  /** Set when the caller chose the chunk; otherwise autoChunkBytes picks it per call. */
  private readonly fixedChunkElements: number | undefined;
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private readonly float32 = new Float32Codec();
  private readonly scratchByCodec = new Map<string, Uint8Array[]>();
  private nextOp = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private brokenBy: Error | undefined;

  constructor(membership: RingMembership, options: RingOptions = {}) {
    const { rank, worldSize, channel } = membership;
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new RingError('usage', `ring world size must be a positive integer, got ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new RingError('usage', `rank must be an integer in [0, ${worldSize}), got ${rank}`);
    if (worldSize > 1 && !channel) throw new RingError('usage', `a ring of ${worldSize} ranks needs a channel to its neighbours`);
    const chunkBytes = options.chunkBytes;
    if (chunkBytes !== undefined && (!Number.isInteger(chunkBytes) || chunkBytes < 4 || chunkBytes % 4 !== 0)) {
      throw new RingError('usage', `chunkBytes must be a positive multiple of 4, got ${chunkBytes}`);
    }
    if (channel?.maxFrameBytes !== undefined && (chunkBytes ?? DEFAULT_CHUNK_BYTES) > channel.maxFrameBytes) {
      throw new RingError('usage', `chunkBytes ${chunkBytes ?? DEFAULT_CHUNK_BYTES} exceeds what the ring's data plane was opened for (${channel.maxFrameBytes} bytes): join the ring with maxFrameBytes ≥ chunkBytes`);
    }
    this.rank = rank;
    this.worldSize = worldSize;
    this.channel = channel;
    this.fixedChunkElements = chunkBytes === undefined ? undefined : chunkBytes / 4;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) throw new RingError('usage', `maxInFlight must be a positive integer, got ${this.maxInFlight}`);
  }

  /** The part of an all-gather buffer of `length` elements that `rank` contributes. */
  segmentOf(length: number, rank = this.rank): Region {
    return segmentOf(length, this.worldSize, rank);
  }

  /** Sums (or averages) `buffer` element-wise across all ranks; every rank ends with the same bits. */
  allReduce(buffer: Float32Array, options: AllReduceOptions = {}): Promise<CollectiveStats> {
    const op = options.op ?? 'sum';
    const codec = options.codec ?? this.float32;
    const n = this.worldSize;
    const residual = options.residual;
    if (residual && residual.length !== buffer.length) {
      return Promise.reject(new RingError('usage', `residual has ${residual.length} elements, the buffer ${buffer.length}`));
    }
    const onSegmentReduced = options.onSegmentReduced;
    if (onSegmentReduced && !codec.rawFloat32) return Promise.reject(new RingError('usage', `onSegmentReduced needs raw float32 frames, not the ${codec.name} codec`));
    /** Rounds `region` as the codec will, adding what rounding dropped to the residual. */
    const roundKeepingError = (region: Region): void => {
      const values = buffer.subarray(region.start, region.end);
      if (!residual) return codec.roundTrip(values);
      const exact = values.slice();
      codec.roundTrip(values);
      for (let i = 0; i < values.length; i++) residual[region.start + i] = residual[region.start + i]! + (exact[i]! - values[i]!);
    };
    return this.run('allReduce', buffer, codec, () =>
      allReducePlan({
        rank: this.rank,
        worldSize: n,
        length: buffer.length,
        chunkElements: this.chunkElementsFor(buffer.length, codec),
        finishSegment: (region) => {
          if (op === 'mean') scaleInPlace(buffer.subarray(region.start, region.end), 1 / n);
          roundKeepingError(region);
          onSegmentReduced?.(region);
        },
        ...(residual && codec.needsScratch ? { beforePartialSend: roundKeepingError } : {}),
      }),
    );
  }

  /** Every rank fills its own `segmentOf(buffer.length)`; afterwards every rank has all segments. */
  allGather(buffer: Float32Array): Promise<CollectiveStats> {
    return this.run('allGather', buffer, this.float32, () =>
      allGatherPlan({ rank: this.rank, worldSize: this.worldSize, length: buffer.length, chunkElements: this.chunkElementsFor(buffer.length, this.float32) }),
    );
  }

  /** Copies `root`'s buffer into every other rank's buffer (exact bits: used for initial weights). */
  broadcast(buffer: Float32Array, root = 0): Promise<CollectiveStats> {
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      return Promise.reject(new RingError('usage', `broadcast root must be a rank in [0, ${this.worldSize}), got ${root}`));
    }
    return this.run('broadcast', buffer, this.float32, () =>
      broadcastPlan({ rank: this.rank, worldSize: this.worldSize, length: buffer.length, chunkElements: this.chunkElementsFor(buffer.length, this.float32), root }),
    );
  }

  private run(kind: CollectiveStats['kind'], buffer: Float32Array, codec: WireCodec, makePlan: () => StreamPlan): Promise<CollectiveStats> {
    if (!(buffer instanceof Float32Array)) return Promise.reject(new RingError('usage', `${kind} needs a Float32Array buffer`));
    const op = this.nextOp;
    this.nextOp = (this.nextOp + 1) >>> 0;
    const result = this.tail.then(async () => {
      if (this.brokenBy) throw new RingError('broken', `the ring is broken by an earlier failure (${this.brokenBy.message}); build a new ring`);
      const started = performance.now();
      const empty: StreamStats = { bytesSent: 0, bytesReceived: 0, receiveWaitMs: 0, reduceMs: 0 };
      try {
        const stats = this.channel ? await runRingStream(this.channel, makePlan(), buffer, this.streamOptions(op, codec)) : empty;
        return { ...stats, kind, op, elements: buffer.length, ms: performance.now() - started };
      } catch (error) {
        this.brokenBy = error as Error;
        throw error;
      }
    });
    this.tail = result.catch(() => {});
    return result;
  }

  /** The chunk for a buffer of `length` elements: the caller's, or automatic for raw float32 frames. */
  chunkElementsFor(length: number, codec: WireCodec = this.float32): number {
    if (this.fixedChunkElements !== undefined) return this.fixedChunkElements;
    // Encoding codecs keep 1 MiB: their scratch buffers are sized for one chunk.
    if (!codec.rawFloat32 || codec.needsScratch) return DEFAULT_CHUNK_BYTES / 4;
    return autoChunkBytes(length * 4, this.worldSize, this.channel?.maxFrameBytes) / 4;
  }

  private streamOptions(op: number, codec: WireCodec) {
    return { op, codec, timeoutMs: this.timeoutMs, maxInFlight: this.maxInFlight, scratch: this.scratchFor(codec) };
  }

  /** Encode buffers are allocated once per codec and reused: fresh memory is slow here (DESIGN §3). */
  private scratchFor(codec: WireCodec): Uint8Array[] {
    if (!codec.needsScratch) return [];
    let scratch = this.scratchByCodec.get(codec.name);
    if (!scratch) {
      // Sized for the chunk this codec is sent in (independent of the buffer for codecs with scratch).
      const bytes = codec.encodedBytes(this.chunkElementsFor(0, codec));
      scratch = Array.from({ length: this.maxInFlight }, () => new Uint8Array(bytes));
      this.scratchByCodec.set(codec.name, scratch);
    }
    return scratch;
  }
}
