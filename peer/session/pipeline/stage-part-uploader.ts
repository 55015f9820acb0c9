import type { ClusterMessageOf } from '../../../coordinator/protocol/cluster-messages.js';
import { describeFiles, sendFiles } from '../../../coordinator/protocol/file-transfer.js';
import type { Logger } from '../../../shared/log/logger.js';
import type { CoordinatorLink } from '../coordinator-link.js';
import type { StageHolder } from './stage-holder.js';

const UPLOAD_TIMEOUT_MS = 120_000;

type DataPosition = NonNullable<ClusterMessageOf<'stage-checkpoint'>['dataPosition']>;

/**
 * Uploads this stage's part of a checkpoint: captured between two steps (a committed step), sent
 * while training goes on, one upload at a time. The coordinator joins the parts of all stages.
 */
export class StagePartUploader {
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly link: CoordinatorLink,
    private readonly log: Logger,
  ) {}

  /**
   * Captures the part of `holder`'s committed step now and uploads it in the background.
   * `dataPosition` (stage 0, which reads the data): where its iterator stands after that step.
   */
  async start(holder: StageHolder, epoch: number, loss: number | null, dataPosition?: DataPosition): Promise<void> {
    // A part due while the previous one is still on the wire waits for it: every stage must send
    // the part of every step it was asked for, or that checkpoint stays incomplete.
    await this.settle();
    const step = holder.committedStep;
    const files = await holder.exportPart(step);
    const upload = (async () => {
      await this.link.sendControl({ type: 'stage-checkpoint', epoch, step, stage: holder.stage, files: describeFiles(files), loss, ...(dataPosition ? { dataPosition } : {}) });
      await sendFiles(this.link, { epoch, step }, files, UPLOAD_TIMEOUT_MS);
      this.log.debug({ step, stage: holder.stage, bytes: files.reduce((n, f) => n + f.data.byteLength, 0) }, 'stage checkpoint part uploaded');
    })();
    this.inFlight = upload
      .catch((error: unknown) => this.log.warn({ err: error, step }, 'stage checkpoint upload failed; the coordinator keeps the previous checkpoint'))
      .finally(() => {
        this.inFlight = undefined;
      });
  }

  async settle(): Promise<void> {
    await this.inFlight;
  }
}
