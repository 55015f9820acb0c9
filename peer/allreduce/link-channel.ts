import type { ControlMessage, Link } from '../../shared/transport/index.js';
import type { ExpectedFrame, FrameTag, FrameTargets, ReceivedFrame, RingChannel } from './ring-channel.js';
import { RingError } from './ring-errors.js';
import { allocateShared } from './wasm-arena.js';

/**
 * The ring channel over transport links: frames go out on the link to the next rank and come in on
 * the link from the previous one (for two ranks these are two connections, one per direction).
 * Chunks travel as uint8 tensor frames, header fields reused as: epoch = ring epoch, step = collective
 * number, tensorId = frame index.
 *
 * Nothing is allocated per frame: the link writes each payload into memory we hand it (`into`). A
 * frame the ring only copies goes straight to its place in the ring buffer (frame targets); every
 * other frame goes to one of two reused receive slots in the ring arena, where the SIMD add reads it
 * in place. Without `into` the link would hand over a fresh buffer per frame (GC, first touch).
 */
export function linkRingChannel<M extends ControlMessage>(args: { next: Link<M>; previous: Link<M>; epoch: number; sendTimeoutMs?: number }): RingChannel {
  const { next, previous, epoch } = args;
  const slots: Uint8Array[] = [arenaBytes(0), arenaBytes(0)];
  let turn = 0;
  let targets: FrameTargets | undefined;
  /** A slot of at least `bytes`; the two alternate, so the frame handed out last stays intact. */
  const slotFor = (bytes: number): Uint8Array => {
    turn ^= 1;
    if (slots[turn]!.byteLength < bytes) slots[turn] = arenaBytes(bytes);
    return slots[turn]!;
  };
  return {
    send(tag: FrameTag, bytes: Uint8Array): Promise<void> {
      return wrapLinkError(next.sendTensor({ epoch, step: tag.op, tensorId: tag.frame }, bytes, args.sendTimeoutMs === undefined ? {} : { timeoutMs: args.sendTimeoutMs }));
    },
    async receive(timeoutMs: number, expected?: ExpectedFrame): Promise<ReceivedFrame> {
      const into = expected ? (targets?.(expected.tag, expected.byteLength) ?? slotFor(expected.byteLength)) : undefined;
      const { header, data } = await wrapLinkError(previous.nextTensor(into ? { timeoutMs, into } : { timeoutMs }));
      if (header.epoch !== epoch) {
        throw new RingError('desync', `frame from ${previous.peerLabel} belongs to ring epoch ${header.epoch}, this ring is epoch ${epoch}`);
      }
      if (!(data instanceof Uint8Array) || header.dtype !== 'uint8') {
        throw new RingError('desync', `unexpected ${header.dtype} tensor frame from ${previous.peerLabel}: ring frames are raw bytes`);
      }
      return { tag: { op: header.step, frame: header.tensorId }, bytes: data };
    },
    setFrameTargets(resolve: FrameTargets | undefined): void {
      targets = resolve;
    },
  };
}

function arenaBytes(bytes: number): Uint8Array {
  if (bytes === 0) return new Uint8Array(0);
  const { buffer, byteOffset } = allocateShared(bytes);
  return new Uint8Array(buffer, byteOffset, bytes);
}

/** Transport failures become ring errors a caller can act on (timeouts vs dead links). */
async function wrapLinkError<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new RingError(code === 'timeout' ? 'timeout' : 'link', (error as Error).message, { cause: error });
  }
}
