import type { Logger } from '../../shared/log/logger.js';
import type { PeerHandle } from '../membership/peer-handle.js';
import type { ClusterMessageOf } from '../protocol/cluster-messages.js';
import { UPLOADED_FILES } from './checkpoint-layout.js';
import { CheckpointWriteQueue } from './checkpoint-write-queue.js';
import type { CheckpointStore, StoredCheckpoint } from './checkpoint-store.js';
import { withReportedPosition, type TrainingStateRecord } from './training-state-record.js';
import { MAX_UPLOAD_FILE_BYTES, UploadQueue } from './upload-queue.js';


/**
 * Takes checkpoint uploads off peer links and writes them with the store, one write at a time.
 * Frames are read as soon as the announcement arrives (so the link's window never stalls); an
 * upload older than what is already on disk is read and dropped.
 */
export class CheckpointReceiver {
  private readonly queue: CheckpointWriteQueue;
  /** Uploads from one peer share its link's frame stream: they are read one after another. */
  private readonly uploads = new UploadQueue();

  constructor(
    store: CheckpointStore,
    private readonly log: Logger,
    private readonly recordFor: (message: ClusterMessageOf<'checkpoint'>) => TrainingStateRecord,
    private readonly onWritten: (stored: StoredCheckpoint) => void,
  ) {
    this.queue = new CheckpointWriteQueue(store, log);
  }

  handle(peer: PeerHandle, message: ClusterMessageOf<'checkpoint'>): void {
    const names = message.files.map((file) => file.name).sort();
    const expected = [...UPLOADED_FILES].sort();
    const tooBig = message.files.find((file) => file.bytes > MAX_UPLOAD_FILE_BYTES);
    if (names.join('\n') !== expected.join('\n') || tooBig) {
      this.log.error({ peer: peer.label, files: names }, 'malformed checkpoint upload; dropping the peer');
      peer.link.close('malformed checkpoint upload');
      return;
    }
    const received = this.uploads.receive(peer, message);
    const work = (async () => {
      const files = await received;
      const record = withReportedPosition(this.recordFor(message), message.dataPosition);
      await this.queue.write(message.step, files, record, (stored) => {
        this.log.info({ step: stored.step, dir: stored.dir }, 'checkpoint saved');
        this.onWritten(stored);
      });
    })().catch((error: unknown) => {
      this.log.warn({ err: error, peer: peer.label, step: message.step }, 'checkpoint not saved; the previous one stays the newest');
    });
    this.queue.track(work);
  }

  /** Resolves when every upload announced so far is written (or has failed). */
  idle(): Promise<void> {
    return this.queue.idle();
  }
}
