import type { ControlMessage, Link } from '../../shared/transport/index.js';
import type { FrameTag, ReceivedFrame, RingChannel } from './ring-channel.js';
import { RingError } from './ring-errors.js';

/**
 * The ring channel over transport links: frames go out on the link to the next rank and come in on
 * the link from the previous one (for two ranks these are two connections, one per direction).
 * Chunks travel as uint8 tensor frames, header fields reused as: epoch = ring epoch, step = collective
 * number, tensorId = frame index; payloads are viewed, never copied (the codec aligns them if needed).
 */
export function linkRingChannel<M extends ControlMessage>(args: { next: Link<M>; previous: Link<M>; epoch: number; sendTimeoutMs?: number }): RingChannel {
  const { next, previous, epoch } = args;
  return {
    send(tag: FrameTag, bytes: Uint8Array): Promise<void> {
      return wrapLinkError(next.sendTensor({ epoch, step: tag.op, tensorId: tag.frame }, bytes, args.sendTimeoutMs === undefined ? {} : { timeoutMs: args.sendTimeoutMs }));
    },
    async receive(timeoutMs: number): Promise<ReceivedFrame> {
      const { header, data } = await wrapLinkError(previous.nextTensor({ timeoutMs }));
      if (header.epoch !== epoch) {
        throw new RingError('desync', `frame from ${previous.peerLabel} belongs to ring epoch ${header.epoch}, this ring is epoch ${epoch}`);
      }
      if (!(data instanceof Uint8Array) || header.dtype !== 'uint8') {
        throw new RingError('desync', `unexpected ${header.dtype} tensor frame from ${previous.peerLabel}: ring frames are raw bytes`);
      }
      return { tag: { op: header.step, frame: header.tensorId }, bytes: data };
    },
  };
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
