/**
 * What the ring needs from the network, and nothing more: an ordered stream of byte frames to the
 * next rank and one from the previous rank. The algorithm is written (and unit-tested) against this
 * interface; `link-channel.ts` implements it over the authenticated transport links, and
 * `local-channel.ts` in memory.
 */

/** Identifies a frame within the sequence of collectives, so a rank that is out of step is caught. */
export interface FrameTag {
  /** Sequence number of the collective (all ranks call collectives in the same order). */
  op: number;
  /** Index of the frame within that collective. */
  frame: number;
}

export interface ReceivedFrame {
  tag: FrameTag;
  /** The payload; may sit at any byte offset. Valid until the next `receive`. */
  bytes: Uint8Array;
}

export interface RingChannel {
  /**
   * The largest frame this channel can carry, when it states one (the tcp planes: what their receive
   * buffers take). Automatic chunk sizes grow past 1 MiB only on channels that state it.
   */
  readonly maxFrameBytes?: number;
  /** Sends one frame to the next rank. Resolves once `bytes` may be overwritten. */
  send(tag: FrameTag, bytes: Uint8Array): Promise<void>;
  /**
   * The next frame from the previous rank, in send order. Rejects after `timeoutMs`. `expected` is
   * what the ring waits for next: a channel that must choose the payload's memory before the header
   * arrives (the link) uses it; the frame is still checked on arrival.
   */
  receive(timeoutMs: number, expected?: ExpectedFrame): Promise<ReceivedFrame>;
  /**
   * Optional: `resolve` names, for a frame about to be read, the memory its payload belongs in
   * (or undefined). A channel that can will read the payload straight there, and `receive` then
   * returns that very memory, sparing a copy. Cleared with undefined.
   */
  setFrameTargets?(resolve: FrameTargets | undefined): void;
}

export interface ExpectedFrame {
  tag: FrameTag;
  byteLength: number;
}

export type FrameTargets = (tag: FrameTag, byteLength: number) => Uint8Array | undefined;

/** This process's place in the ring. `channel` is absent only when the ring has one member. */
export interface RingMembership {
  rank: number;
  worldSize: number;
  channel?: RingChannel;
}
