import type { ClusterJob } from '../../coordinator/job/cluster-job.js';
import type { TrainingPlan } from '../../coordinator/job/training-plan.js';
import type { ClusterMessageOf } from '../../coordinator/protocol/cluster-messages.js';
import { receiveFiles } from '../../coordinator/protocol/file-transfer.js';
import type { Dataset } from '../../shared/data/pipeline/dataset.js';
import type { Sample } from '../../shared/data/pipeline/source.js';
import { classifyStall } from '../../shared/data/stall-meter.js';
import type { Logger } from '../../shared/log/logger.js';
import { RingCollective } from '../allreduce/ring-collective.js';
import type { JoinedRing, RingNode } from '../allreduce/ring-setup.js';
import { trainStep } from '../trainer/train-step.js';
import { AbortScope, EpochAborted, withTimeout } from './abort-scope.js';
import { importCheckpointFiles } from './checkpoint-files.js';
import type { CheckpointUploader } from './checkpoint-uploader.js';
import { sendQuietly, type CoordinatorLink } from './coordinator-link.js';
import type { GlobalBatches, SliceStream } from './global-batches.js';
import { SessionGradientExchange, type ExchangeSettings } from './session-exchange.js';
import type { TrainingState } from './training-state.js';
import { evaluateResponsively } from './responsive-evaluation.js';
import { yieldToEventLoop } from './yield-to-event-loop.js';
import { EpochLifecycle } from './epoch-lifecycle.js';

type Assign = ClusterMessageOf<'assign'>;
type Start = ClusterMessageOf<'start'>;
type Restore = ClusterMessageOf<'restore'>;
export type EpochOutcome = Omit<ClusterMessageOf<'epoch-ended'>, 'type'>;

export interface EpochDeps {
  link: CoordinatorLink;
  job: ClusterJob;
  plan: TrainingPlan;
  state: TrainingState;
  batches: GlobalBatches;
  test: Dataset<Sample>;
  numClasses: number;
  uploader: CheckpointUploader;
  log: Logger;
}

const RING_JOIN_TIMEOUT_MS = 30_000;
const RESTORE_TIMEOUT_MS = 120_000;

/**
 * One membership epoch on a peer: join the ring, agree on the starting state (broadcast from the
 * epoch's state root), then train step after step until the last step, an agreed stop, or a
 * failure. A failure anywhere — a dead neighbour, a timeout, an abort from the coordinator — ends
 * the epoch; the state keeps the last committed step, which is what the next epoch starts from.
 */
export class EpochRun extends EpochLifecycle<Start, EpochOutcome, Restore> {
  private readonly scope = new AbortScope();
  private ring: JoinedRing | undefined;
  private exchange: SessionGradientExchange | undefined;
  private slices: SliceStream | undefined;
  private stopWanted = false;
  private checkpointWanted = false;

  constructor(
    readonly assignment: Assign,
    private readonly node: RingNode,
    private readonly deps: EpochDeps,
  ) {
    super();
  }

  get epoch(): number {
    return this.assignment.epoch;
  }

  requestStop(): void {
    this.stopWanted = true;
    if (this.exchange) this.exchange.stopRequested = true;
  }

  requestCheckpoint(): void {
    this.checkpointWanted = true;
  }

  /** Ends the epoch now: pending ring operations fail, the training loop exits after its step. */
  abort(reason: string): void {
    if (this.scope.aborted) return;
    this.scope.abort(reason);
    void this.closeRing();
  }

  protected async run(start: Start): Promise<EpochOutcome> {
    const { rank, worldSize, epoch } = this.assignment;
    const { state, job, plan, log } = this.deps;
    try {
      this.ring = await this.scope.race(this.node.join(start.next ?? undefined, { timeoutMs: RING_JOIN_TIMEOUT_MS }), (late) => void late.close());
      const collective = new RingCollective(this.ring.membership, { timeoutMs: job.stepTimeoutSeconds * 1000 });
      await this.agreeOnState(collective, start);
      log.info({ epoch, rank, worldSize, startStep: start.startStep, stateFrom: start.stateSource, stateRoot: start.stateRoot }, 'epoch started');

      this.exchange = new SessionGradientExchange(collective, state.model, exchangeSettingsOf(job));
      this.exchange.stopRequested = this.stopWanted;
      // The data stream starts where the state stands: the batch after the committed step.
      const slices = (this.slices = this.deps.batches.open(rank, worldSize, start.startStep, log, start.dataPosition));
      let lastLoss: number | null = null;
      for (let step = start.startStep + 1; step <= start.totalSteps; step++) {
        await yieldToEventLoop();
        this.scope.throwIfAborted();
        const began = performance.now();
        const batch = await this.scope.race(slices.next());
        const dataWaitMs = performance.now() - began;
        this.exchange.share = batch.size / plan.batchSize;
        // Not raced against an abort: a step either applies a fully all-reduced update or fails in
        // the exchange (closing the ring makes it fail), so the state is always a committed step.
        const result = await trainStep(state.ctx, batch, this.exchange.exchange, { accuracy: true });
        state.committedStep = step;
        lastLoss = result.loss;
        const stepMs = performance.now() - began;
        // TensorFlow's input-bound measure: the share of the step spent waiting for the batch.
        const stallPercent = stepMs > 0 ? (100 * dataWaitMs) / stepMs : 0;
        sendQuietly(this.deps.link, {
          type: 'progress',
          epoch,
          step,
          loss: result.loss,
          samples: batch.size,
          samplesPerSecond: (plan.batchSize * 1000) / stepMs,
          exchangeMs: result.exchangeMs,
          computeMs: result.computeMs,
          dataWaitMs,
          stallPercent,
          inputBound: classifyStall(stallPercent),
          allReduceMs: result.exchangeMs,
          allReduceBytes: this.exchange.wireBytes,
          rssBytes: process.memoryUsage.rss(),
          ...(result.accuracy !== undefined ? { accuracy: result.accuracy } : {}),
        });
        if (rank === 0 && step < start.totalSteps && (this.checkpointWanted || (job.checkpoint.everySteps > 0 && step % job.checkpoint.everySteps === 0))) {
          // A checkpoint due while the previous one is still on the wire waits for it: skipping it
          // would break the promise that at most one interval of work is ever redone.
          await this.deps.uploader.settle();
          if (await this.deps.uploader.start(state, epoch, lastLoss, slices.savedPosition)) this.checkpointWanted = false;
        }
        if (this.exchange.stopAgreed && step < start.totalSteps) {
          return { epoch, committedStep: step, outcome: 'stopped', reason: 'stopped by the coordinator (membership change)' };
        }
      }
      if (rank === 0) await this.finishJob(lastLoss);
      return { epoch, committedStep: state.committedStep, outcome: 'finished', reason: 'all steps done' };
    } finally {
      await Promise.allSettled([this.closeRing(), this.slices?.close()]);
    }
  }

  /** Everyone ends up with the state root's weights and optimizer state, bit for bit. */
  private async agreeOnState(collective: RingCollective, start: Start): Promise<void> {
    const { state, link } = this.deps;
    const isRoot = this.assignment.rank === start.stateRoot;
    const flat = new Float32Array(state.layout.elements);
    if (isRoot) {
      if (start.stateSource === 'fresh') {
        await state.resetToInitial();
      } else if (start.stateSource === 'checkpoint') {
        const restore = await this.scope.race(withTimeout(this.restoreMessage(), RESTORE_TIMEOUT_MS, () => `no checkpoint from the coordinator within ${RESTORE_TIMEOUT_MS} ms`));
        const files = await this.scope.race(receiveFiles(link, { epoch: restore.epoch, step: restore.step }, restore.files, RESTORE_TIMEOUT_MS));
        await importCheckpointFiles(state, files, restore.step);
      } else if (state.committedStep !== start.startStep) {
        throw new Error(`asked to provide the state of step ${start.startStep} from memory, but this peer holds step ${state.committedStep}`);
      }
      await state.exportFlat(flat);
    }
    await this.scope.race(collective.broadcast(flat, start.stateRoot));
    if (!isRoot) await state.importFlat(flat, start.startStep);
    state.committedStep = start.startStep;
  }

  /** Rank 0 after the last step: test accuracy, then the final checkpoint, then the result. */
  private async finishJob(lastLoss: number | null): Promise<void> {
    const { state, job, test, link, uploader, log } = this.deps;
    const evaluation = await evaluateResponsively(state.model, test, { batchSize: job.evalBatchSize, outputKind: state.ctx.outputKind, inputShape: state.ctx.inputShape, numClasses: this.deps.numClasses }, (done, total) =>
      sendQuietly(link, { type: 'evaluating', epoch: this.epoch, done, total }),
    );
    log.info({ step: state.committedStep, accuracy: evaluation.accuracy, loss: evaluation.loss }, 'final evaluation');
    await uploader.settle();
    await uploader.start(state, this.epoch, lastLoss, this.slices?.savedPosition);
    await uploader.settle();
    await link.sendControl({ type: 'result', epoch: this.epoch, step: state.committedStep, accuracy: evaluation.accuracy, loss: evaluation.loss, samples: evaluation.samples });
  }

  protected failure(error: unknown): EpochOutcome {
    const aborted = error instanceof EpochAborted || this.scope.aborted;
    const reason = aborted ? (this.scope.reason ?? (error as Error).message) : (error as Error).message;
    if (!aborted) this.deps.log.warn({ epoch: this.epoch, err: error }, 'epoch failed');
    return { epoch: this.epoch, committedStep: this.deps.state.committedStep, outcome: aborted ? 'aborted' : 'failed', reason: reason.slice(0, 1_900) };
  }

  private async closeRing(): Promise<void> {
    const ring = this.ring;
    this.ring = undefined;
    await Promise.allSettled([ring?.close(), this.node.close()]);
  }
}

/** The job file's exchange fields as the exchange takes them. */
function exchangeSettingsOf(job: ClusterJob): ExchangeSettings {
  return {
    compress: job.compress,
    seed: job.seed,
    ...(job.bucketMiB !== undefined ? { bucketBytes: job.bucketMiB * 1024 * 1024 } : {}),
    ...(job.powerSgdRank !== undefined ? { powerSgdRank: job.powerSgdRank } : {}),
  };
}
