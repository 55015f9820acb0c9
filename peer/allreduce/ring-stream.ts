import type { FrameTag, RingChannel } from './ring-channel.js';
import { RingError } from './ring-errors.js';
import type { Region } from './partition.js';
import { ProgressGate } from './progress-gate.js';
import type { WireCodec } from './wire-codec.js';

/**
 * One collective as seen by one rank: which chunks it sends to the next rank (and when), which it
 * receives from the previous one and what it does with them. All-reduce, all-gather and broadcast are
 * plans over the same engine.
 */
export interface StreamPlan {
  sendFrames: number;
  receiveFrames: number;
  sendRegion(frame: number): Region;
  /** How many received frames must be applied before `frame` may be sent (it forwards their data). */
  sendAfterReceived(frame: number): number;
  receiveRegion(frame: number): Region;
  receiveMode(frame: number): 'add' | 'copy';
  /** Runs right before `region` is encoded and sent as `frame`. */
  beforeSend?(frame: number, region: Region): void;
  /** Runs right after a received frame has been applied to `region`. */
  afterReceive?(frame: number, region: Region): void;
}

export interface StreamOptions {
  op: number;
  codec: WireCodec;
  /** Per received frame. */
  timeoutMs: number;
  /** Sends handed to the channel but not yet finished (the double/quad buffering depth). */
  maxInFlight: number;
  /** One scratch buffer per in-flight send, for codecs that encode into a copy. */
  scratch: Uint8Array[];
}

/** Where one collective's time went on this rank. */
export interface StreamStats {
  bytesSent: number;
  bytesReceived: number;
  /** Time the receive loop spent waiting for the previous rank's next frame. */
  receiveWaitMs: number;
  /** Time spent decoding and reducing/copying received frames. */
  reduceMs: number;
}

/**
 * Runs a plan: a send loop and a receive loop run concurrently, so while chunk c is being reduced,
 * chunk c+1 is already on the wire and chunk c−1 is being forwarded. Each frame carries its tag and
 * is checked on arrival; any failure stops both loops.
 */
export async function runRingStream(channel: RingChannel, plan: StreamPlan, buffer: Float32Array, options: StreamOptions): Promise<StreamStats> {
  const stats: StreamStats = { bytesSent: 0, bytesReceived: 0, receiveWaitMs: 0, reduceMs: 0 };
  const applied = new ProgressGate();
  let abort!: (error: Error) => void;
  const aborted = new Promise<never>((_, reject) => (abort = reject));
  aborted.catch(() => {});
  const fail = (error: Error): never => {
    applied.fail(error);
    abort(error);
    throw error;
  };
  // Copied frames can land in the buffer directly when the wire carries the float32 bytes as is.
  if (channel.setFrameTargets && options.codec.rawFloat32) {
    channel.setFrameTargets((tag, byteLength) => {
      if (tag.op !== options.op || tag.frame >= plan.receiveFrames || plan.receiveMode(tag.frame) !== 'copy') return undefined;
      const region = plan.receiveRegion(tag.frame);
      if ((region.end - region.start) * 4 !== byteLength) return undefined;
      return new Uint8Array(buffer.buffer, buffer.byteOffset + region.start * 4, byteLength);
    });
  }
  const sending = sendLoop(channel, plan, buffer, options, applied, stats, (error) => {
    applied.fail(error);
    abort(error);
  }).catch(fail);
  const receiving = receiveLoop(channel, plan, buffer, options, applied, stats, aborted).catch(fail);
  try {
    // Racing the abort: a send stuck in a dead socket must not keep the collective from failing.
    await Promise.race([Promise.all([sending, receiving]), aborted]);
  } finally {
    channel.setFrameTargets?.(undefined);
  }
  return stats;
}

async function sendLoop(
  channel: RingChannel,
  plan: StreamPlan,
  buffer: Float32Array,
  options: StreamOptions,
  applied: ProgressGate,
  stats: StreamStats,
  onSendFailure: (error: Error) => void,
): Promise<void> {
  const inFlight: Promise<void>[] = [];
  const freeScratch = options.scratch.slice();
  for (let frame = 0; frame < plan.sendFrames; frame++) {
    const needed = plan.sendAfterReceived(frame);
    if (applied.value < needed) await applied.reach(needed);
    if (inFlight.length >= options.maxInFlight) await inFlight.shift();
    const region = plan.sendRegion(frame);
    plan.beforeSend?.(frame, region);
    const values = buffer.subarray(region.start, region.end);
    const scratch = options.codec.needsScratch ? freeScratch.pop() : undefined;
    if (options.codec.needsScratch && !scratch) throw new RingError('usage', 'internal: no free scratch buffer for an encoded send');
    const bytes = options.codec.encode(values, scratch ?? EMPTY);
    stats.bytesSent += bytes.byteLength;
    const tag: FrameTag = { op: options.op, frame };
    const sent = scratch ? channel.send(tag, bytes).then(() => void freeScratch.push(scratch)) : channel.send(tag, bytes);
    // A send can fail while this loop waits on something else: stop the receive loop at once.
    sent.catch(onSendFailure);
    inFlight.push(sent);
  }
  await Promise.all(inFlight);
}

async function receiveLoop(
  channel: RingChannel,
  plan: StreamPlan,
  buffer: Float32Array,
  options: StreamOptions,
  applied: ProgressGate,
  stats: StreamStats,
  aborted: Promise<never>,
): Promise<void> {
  for (let frame = 0; frame < plan.receiveFrames; frame++) {
    const region = plan.receiveRegion(frame);
    const expectedBytes = options.codec.encodedBytes(region.end - region.start);
    const waitStart = performance.now();
    const received = await Promise.race([channel.receive(options.timeoutMs, { tag: { op: options.op, frame }, byteLength: expectedBytes }), aborted]);
    const applyStart = performance.now();
    stats.receiveWaitMs += applyStart - waitStart;
    checkFrame(received.tag, received.bytes.byteLength, options.op, frame, expectedBytes);
    stats.bytesReceived += expectedBytes;
    const target = buffer.subarray(region.start, region.end);
    if (plan.receiveMode(frame) === 'add') options.codec.decodeAdd(received.bytes, target);
    else options.codec.decodeCopy(received.bytes, target);
    plan.afterReceive?.(frame, region);
    stats.reduceMs += performance.now() - applyStart;
    applied.advance();
  }
}

function checkFrame(tag: FrameTag, bytes: number, op: number, frame: number, expectedBytes: number): void {
  if (tag.op !== op || tag.frame !== frame) {
    throw new RingError(
      'desync',
      `ring out of step: expected frame ${frame} of collective #${op} from the previous rank, got frame ${tag.frame} of collective #${tag.op}. ` +
        'Every rank must call the same collectives in the same order.',
    );
  }
  if (bytes !== expectedBytes) {
    throw new RingError(
      'desync',
      `frame ${frame} of collective #${op} carries ${bytes} bytes, expected ${expectedBytes}: ` +
        'every rank must pass a buffer of the same length, with the same chunk size and compression.',
    );
  }
}

const EMPTY = new Uint8Array(0);
