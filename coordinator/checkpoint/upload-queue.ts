import type { PeerHandle } from '../membership/peer-handle.js';
import { receiveFiles, type TransferFile } from '../protocol/file-transfer.js';

const RECEIVE_TIMEOUT_MS = 120_000;
/** File sizes travel as 32-bit lengths. */
export const MAX_UPLOAD_FILE_BYTES = 4 * 1024 * 1024 * 1024 - 1;

/**
 * Checkpoint uploads of each peer, received one after another: a peer's files arrive on its one
 * link in the order it announced them, so an upload is read only once the previous one is in.
 */
export class UploadQueue {
  private readonly perPeer = new WeakMap<PeerHandle, Promise<unknown>>();

  /** The files of the upload `message` announced, after that peer's earlier uploads. */
  receive(peer: PeerHandle, message: { epoch: number; step: number; files: readonly { name: string; bytes: number }[] }): Promise<TransferFile[]> {
    const previous = this.perPeer.get(peer) ?? Promise.resolve();
    const received = previous.then(() => receiveFiles(peer.link, { epoch: message.epoch, step: message.step }, message.files, RECEIVE_TIMEOUT_MS));
    this.perPeer.set(peer, received.catch(() => {}));
    return received;
  }
}
