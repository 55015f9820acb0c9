import type { ControlMessage, Link, TensorArray, TensorHeader } from '../../../shared/transport/index.js';
import { PipelineError } from '../errors.js';
import { checkData, checkTag, describeTag, type NeighbourLink, type StageTensor, type TensorKind, type TensorTag } from './neighbour-link.js';

const KIND_CODES: Record<TensorKind, number> = { activation: 1, labels: 2, gradient: 3, 'labelled-activation': 4 };
const KINDS_BY_CODE = new Map(Object.entries(KIND_CODES).map(([kind, code]) => [code, kind as TensorKind]));
const MICRO_BITS = 24;
const MAX_MICRO = 2 ** MICRO_BITS - 1;

export interface TransportNeighbourOptions {
  /** Frames of another epoch (another run, another membership) are refused. */
  epoch: number;
  /** Largest payload per frame; bigger tensors go in several frames. Keep ≤ the link's maxTensorBytes. */
  chunkBytes?: number;
  /** Longest a send may wait for the neighbour to take data (flow control). */
  sendTimeoutMs?: number;
}

export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * A neighbour link over an authenticated transport link. Tensors travel as raw binary frames: header
 * epoch = run epoch, step = mini-batch step, tensorId = kind << 24 | micro-batch; a tensor larger
 * than `chunkBytes` is split into frames with increasing offsets.
 */
export function transportNeighbourLink<M extends ControlMessage>(link: Link<M>, options: TransportNeighbourOptions): NeighbourLink {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 8 || chunkBytes % 8 !== 0) {
    throw new PipelineError('usage', `chunkBytes must be a positive multiple of 8, got ${chunkBytes}`);
  }
  const label = link.peer.nodeId;
  return {
    label,
    async send(tag, data) {
      const tensorId = encodeTensorId(tag);
      const chunkElements = chunkBytes / data.BYTES_PER_ELEMENT;
      const frames: Promise<void>[] = [];
      const sendOptions = options.sendTimeoutMs === undefined ? {} : { timeoutMs: options.sendTimeoutMs };
      try {
        // An empty tensor still sends one (empty) frame, so the receiver sees it.
        for (let offset = 0; offset === 0 || offset < data.length; offset += chunkElements) {
          const part = data.subarray(offset, Math.min(data.length, offset + chunkElements));
          frames.push(link.sendTensor({ epoch: options.epoch, step: tag.step, tensorId, offset, totalLength: data.length }, part, sendOptions));
        }
        await Promise.all(frames);
      } catch (error) {
        frames.forEach((frame) => frame.catch(() => {}));
        throw linkError(error, `sending the ${describeTag(tag)} to ${label}`);
      }
    },
    async receive(expected, timeoutMs, into) {
      try {
        const first = await link.nextTensor(into ? { timeoutMs, into } : { timeoutMs });
        checkFrame(first.header, expected, label, options.epoch, 0);
        checkData(expected, first.data as StageTensor, label);
        if (first.header.length === first.header.totalLength) return first.data as StageTensor;
        let whole: StageTensor;
        if (into && into.length === first.header.totalLength) {
          whole = into;
        } else {
          whole = first.data instanceof Float32Array ? new Float32Array(first.header.totalLength) : new Int32Array(first.header.totalLength);
          whole.set(first.data as Float32Array & Int32Array);
        }
        let filled = first.header.length;
        while (filled < whole.length) {
          const frame = await link.nextTensor<TensorArray>({ timeoutMs, into: whole });
          checkFrame(frame.header, expected, label, options.epoch, filled);
          if (frame.header.totalLength !== whole.length) throw new PipelineError('desync', `the ${describeTag(expected)} from ${label} changed its length mid-tensor`);
          filled += frame.header.length;
        }
        return whole;
      } catch (error) {
        throw linkError(error, `waiting for the ${describeTag(expected)} from ${label}`);
      }
    },
    // Complete frames queued and not yet taken (a tensor still arriving does not count).
    hasArrived: () => link.queuedTensorBytes > 0,
    close(reason = 'pipeline closed') {
      link.close(reason);
    },
  };
}

function encodeTensorId(tag: TensorTag): number {
  if (!Number.isInteger(tag.micro) || tag.micro < 0 || tag.micro > MAX_MICRO) throw new PipelineError('usage', `micro-batch index ${tag.micro} out of range`);
  return KIND_CODES[tag.kind] * 2 ** MICRO_BITS + tag.micro;
}

function decodeTensorId(tensorId: number): { kind: TensorKind | undefined; micro: number } {
  return { kind: KINDS_BY_CODE.get(Math.floor(tensorId / 2 ** MICRO_BITS)), micro: tensorId % 2 ** MICRO_BITS };
}

function checkFrame(header: TensorHeader, expected: TensorTag, from: string, epoch: number, offset: number): void {
  if (header.epoch !== epoch) throw new PipelineError('desync', `a frame from ${from} belongs to epoch ${header.epoch}, this pipeline runs epoch ${epoch}`);
  const { kind, micro } = decodeTensorId(header.tensorId);
  if (kind === undefined) throw new PipelineError('desync', `a frame from ${from} carries unknown tensor id ${header.tensorId}`);
  checkTag(expected, { step: header.step, micro, kind }, from);
  if (header.offset !== offset) throw new PipelineError('desync', `the ${describeTag(expected)} from ${from} arrived out of order (offset ${header.offset}, expected ${offset})`);
}

/** Transport failures become pipeline errors a caller can act on; pipeline errors pass through. */
function linkError(error: unknown, doing: string): Error {
  if (error instanceof PipelineError) return error;
  const code = (error as { code?: string }).code;
  return new PipelineError(code === 'timeout' ? 'timeout' : 'link', `${doing}: ${(error as Error).message}`, { cause: error });
}
