import type { ControlMessage, Link } from '../../shared/transport/index.js';

/**
 * Moving checkpoint files over a coordinator link as uint8 tensor frames: file i travels as
 * tensorId i, in chunks (header.offset) so no frame exceeds the transport's limit. The control
 * message announcing the transfer lists names and sizes; `tag` (epoch, step) is stamped on every
 * frame so frames of another transfer are never mistaken for these.
 */
export interface TransferFile {
  name: string;
  data: Uint8Array;
}

export interface TransferTag {
  epoch: number;
  step: number;
}

const CHUNK_BYTES = 4 * 1024 * 1024;

export function describeFiles(files: readonly TransferFile[]): { name: string; bytes: number }[] {
  return files.map((file) => ({ name: file.name, bytes: file.data.byteLength }));
}

export async function sendFiles<M extends ControlMessage>(link: Link<M>, tag: TransferTag, files: readonly TransferFile[], timeoutMs: number): Promise<void> {
  for (const [index, file] of files.entries()) {
    for (let offset = 0; offset < file.data.byteLength; offset += CHUNK_BYTES) {
      const chunk = file.data.subarray(offset, Math.min(offset + CHUNK_BYTES, file.data.byteLength));
      await link.sendTensor({ epoch: tag.epoch, step: tag.step, tensorId: index, offset, totalLength: file.data.byteLength }, chunk, { timeoutMs });
    }
  }
}

/** Receives the files announced as `entries`, all within `timeoutMs`; a frame out of place is an error. */
export async function receiveFiles<M extends ControlMessage>(
  link: Link<M>,
  tag: TransferTag,
  entries: readonly { name: string; bytes: number }[],
  timeoutMs: number,
): Promise<TransferFile[]> {
  const deadline = Date.now() + timeoutMs;
  const files = entries.map((entry) => ({ name: entry.name, data: new Uint8Array(entry.bytes) }));
  for (const [index, file] of files.entries()) {
    let received = 0;
    while (received < file.data.byteLength) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`receiving ${file.name} from ${link.peerLabel} timed out after ${timeoutMs} ms`);
      const { header } = await link.nextTensor({ into: file.data, timeoutMs: remaining });
      const expected = `epoch ${tag.epoch}, step ${tag.step}, file ${index} at byte ${received}`;
      if (header.epoch !== tag.epoch || header.step !== tag.step || header.tensorId !== index || header.offset !== received || header.totalLength !== file.data.byteLength) {
        throw new Error(
          `unexpected checkpoint frame from ${link.peerLabel}: epoch ${header.epoch}, step ${header.step}, file ${header.tensorId} at byte ${header.offset} (expected ${expected})`,
        );
      }
      received += header.length;
    }
  }
  return files;
}
