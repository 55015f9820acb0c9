import type { ClusterJob } from '../../../coordinator/job/cluster-job.js';
import type { PipelineSection } from '../../../coordinator/job/pipeline-section.js';
import type { TrainingPlan } from '../../../coordinator/job/training-plan.js';
import type { ClusterMessageOf } from '../../../coordinator/protocol/cluster-messages.js';
import { receiveFiles } from '../../../coordinator/protocol/file-transfer.js';
import type { Dataset } from '../../../shared/data/pipeline/dataset.js';
import type { Sample } from '../../../shared/data/pipeline/source.js';
import type { Logger } from '../../../shared/log/logger.js';
import { sliceOfGlobalBatch } from '../../../shared/data/pipeline/chunk-layout.js';
import { RingCollective } from '../../allreduce/ring-collective.js';
import type { JoinedRing, RingNode } from '../../allreduce/ring-setup.js';
import { replicasDisagreeing } from '../../pipeline/replicas/replica-agreement.js';
import { replicasFinished, ringGradientAverager } from '../../pipeline/replicas/replica-gradients.js';
import type { JoinedStage, StageNode } from '../../pipeline/links/stage-node.js';
import { runPipelineStage, type StageStepReport } from '../../pipeline/run-stage.js';
import { Timeline } from '../../pipeline/timeline/timeline.js';
import { AbortScope, EpochAborted, withTimeout } from '../abort-scope.js';
import { sendQuietly, type CoordinatorLink } from '../coordinator-link.js';
import type { GlobalBatches, SliceStream } from '../global-batches.js';
import { evaluateThroughPipeline } from './pipeline-evaluation.js';
import type { StageHolder } from './stage-holder.js';
import type { StagePartUploader } from './stage-part-uploader.js';
import { EpochLifecycle } from '../epoch-lifecycle.js';

type AssignStage = ClusterMessageOf<'assign-stage'>;
type Start = ClusterMessageOf<'start'>;
type Restore = ClusterMessageOf<'restore'>;
type StageSync = ClusterMessageOf<'stage-sync'>;
export type StageEpochOutcome = Omit<ClusterMessageOf<'epoch-ended'>, 'type'>;

export interface StageRunDeps {
  link: CoordinatorLink;
  job: ClusterJob;
  settings: PipelineSection;
  plan: TrainingPlan;
  holder: StageHolder;
  batches: GlobalBatches;
  test: Dataset<Sample>;
  numClasses: number;
  outputKind: 'logits' | 'probabilities';
  uploader: StagePartUploader;
  log: Logger;
}

const JOIN_TIMEOUT_MS = 30_000;
const RESTORE_TIMEOUT_MS = 120_000;

/**
 * One membership epoch of a pipeline stage on a peer: link up with the neighbouring stages, take
 * the starting state (fresh, a checkpoint part from the coordinator, or memory), train step after
 * step with runPipelineStage, report each step, upload checkpoint parts, and after the last step
 * evaluate through the pipeline. Any failure (a dead neighbour, a timeout, an abort) ends the epoch;
 * the stage keeps its last committed step.
 */
export class PipelineStageRun extends EpochLifecycle<Start, StageEpochOutcome, Restore> {
  private readonly scope = new AbortScope();
  private joined: JoinedStage | undefined;
  private replicaRing: JoinedRing | undefined;
  private slices: SliceStream | undefined;
  private readonly syncs: StageSync[] = [];

  constructor(
    readonly assignment: AssignStage,
    private readonly node: StageNode,
    /** With replicas: this stage's end of the ring over the same stage of every replica. */
    private readonly replicaNode: RingNode | undefined,
    private readonly deps: StageRunDeps,
  ) {
    super();
  }

  get epoch(): number {
    return this.assignment.epoch;
  }

  /** The coordinator's "after step s, checkpoint / stop" (the same s for every stage). */
  sync(message: StageSync): void {
    const done = this.deps.holder.committedStep;
    if (message.step <= done) {
      // The other stages may still be before the agreed step: this stage would act a step later
      // than they do (a checkpoint whose parts do not join). Said loudly; the coordinator's margin
      // (coordinator/epoch/agreed-step.ts) is meant to make it rare.
      this.deps.log.warn({ agreedStep: message.step, committedStep: done, action: message.action }, `the coordinator's ${message.action} after step ${message.step} arrived after this stage finished step ${done}: acting after the next step`);
    }
    this.syncs.push(message);
  }

  abort(reason: string): void {
    if (this.scope.aborted) return;
    this.scope.abort(reason);
    void this.closeLinks(reason);
  }

  protected async run(start: Start): Promise<StageEpochOutcome> {
    const { stage, stages, epoch } = this.assignment;
    const replica = this.assignment.replica ?? 0;
    const replicas = this.assignment.replicas ?? 1;
    const { holder, job, settings, plan, log, uploader } = this.deps;
    const isFirst = stage === 0;
    const isLast = stage === stages - 1;
    // Replica r trains on its slice of each global batch (the data-parallel split); each slice's
    // mean gradient, weighted by its share, sums over the replica ring to the global-batch mean.
    const slice = sliceOfGlobalBatch(plan.batchSize, replica, replicas);
    const sliceSize = slice.end - slice.start;
    try {
      this.joined = await this.scope.race(this.node.join(start.next ? { next: start.next } : {}, JOIN_TIMEOUT_MS), (late) => void late.abort('epoch already over'));
      let collective: RingCollective | undefined;
      if (this.replicaNode) {
        if (!start.replicaNext) throw new Error(`stage ${stage} of replica ${replica} of ${replicas} was started without the address of the next replica's stage ${stage}`);
        this.replicaRing = await this.scope.race(this.replicaNode.join(start.replicaNext, { timeoutMs: JOIN_TIMEOUT_MS }), (late) => void late.close());
        collective = new RingCollective(this.replicaRing.membership, { timeoutMs: job.stepTimeoutSeconds * 1000 });
      }
      await this.agreeOnState(start);
      log.info({ epoch, stage, stages, replica, replicas, startStep: start.startStep, stateFrom: start.stateSource, layers: holder.module.describe() }, 'pipeline stage started');
      if (isFirst) this.slices = this.deps.batches.open(replica, replicas, start.startStep, log, start.dataPosition);
      const slices = this.slices;
      const timeline = new Timeline({ stage, stages, replica, microBatches: settings.microBatches, schedule: settings.schedule });
      let lastLoss: number | null = null;
      let stoppedAt: number | undefined;
      const afterStep = async (report: StageStepReport): Promise<boolean> => {
        const step = report.step;
        holder.committedStep = step;
        if (report.loss !== undefined) lastLoss = report.loss;
        this.report(step, report, timeline, sliceSize);
        const due = (action: StageSync['action']) => this.syncs.some((s) => s.action === action && s.step <= step);
        const dueCheckpoint = (job.checkpoint.everySteps > 0 && step % job.checkpoint.everySteps === 0) || due('checkpoint');
        // Replicas of a stage hold the same weights: replica 0's stages make the checkpoint.
        if (dueCheckpoint && step < start.totalSteps && replica === 0) await uploader.start(holder, epoch, lastLoss, this.slices?.savedPosition);
        this.forgetSyncs(step, 'checkpoint');
        if (due('stop') && step < start.totalSteps) {
          stoppedAt = step;
          return false;
        }
        this.scope.throwIfAborted();
        return true;
      };
      holder.markTouched();
      await runPipelineStage({
        stage: holder.module,
        stages,
        neighbours: this.joined.neighbours,
        schedule: { microBatches: settings.microBatches, kind: settings.schedule, rematerialize: settings.rematerialize },
        batchSize: sliceSize,
        optimizer: holder.optimizer,
        ...(collective ? { replicas: ringGradientAverager(collective, { share: sliceSize / plan.batchSize }) } : {}),
        steps: start.totalSteps - start.startStep,
        firstStep: start.startStep + 1,
        ...(slices ? { batches: { next: () => this.scope.race(slices.next()) } } : {}),
        ...(isLast ? { loss: { numClasses: this.deps.numClasses, outputKind: this.deps.outputKind } } : {}),
        timeline,
        receiveTimeoutMs: job.stepTimeoutSeconds * 1000,
        afterStep,
      });
      if (collective) await this.checkReplicasAgree(collective, replica);
      if (stoppedAt !== undefined) return { epoch, committedStep: stoppedAt, outcome: 'stopped', reason: 'stopped by the coordinator at an agreed step' };
      // Replica 0's pipeline makes the final checkpoint and evaluates; the others' work is done.
      if (replica === 0) await this.finishJob(start, lastLoss);
      await this.joined.close(job.stepTimeoutSeconds * 1000);
      this.joined = undefined;
      return { epoch, committedStep: holder.committedStep, outcome: 'finished', reason: 'all steps done' };
    } finally {
      await this.closeLinks('epoch over');
      await this.slices?.close().catch(() => {});
    }
  }

  /**
   * After the epoch's last step: every replica of this stage holds the same weights (else the job
   * is wrong, and says so), and every replica has finished its all-reduces before the ring closes.
   */
  private async checkReplicasAgree(collective: RingCollective, replica: number): Promise<void> {
    const { holder } = this.deps;
    const weights = await holder.module.readWeights();
    const differing = await this.scope.race(replicasDisagreeing(collective, replica, weights.map((w) => w.values)));
    if (differing.length > 0) {
      throw new Error(`replicas of stage ${holder.stage} diverged by step ${holder.committedStep}: the weights of replica ${replica} differ from those of replica${differing.length === 1 ? '' : 's'} ${differing.join(', ')}`);
    }
    await replicasFinished(collective);
  }

  /** Every stage starts from the same step: fresh weights, its part of a checkpoint, or what it holds. */
  private async agreeOnState(start: Start): Promise<void> {
    const { holder, link } = this.deps;
    if (start.stateSource === 'fresh') {
      await holder.resetFresh();
    } else if (start.stateSource === 'checkpoint') {
      const restore = await this.scope.race(withTimeout(this.restoreMessage(), RESTORE_TIMEOUT_MS, () => `no checkpoint part from the coordinator within ${RESTORE_TIMEOUT_MS} ms`));
      const files = await this.scope.race(receiveFiles(link, { epoch: restore.epoch, step: restore.step }, restore.files, RESTORE_TIMEOUT_MS));
      await holder.importPart(files, restore.step);
    } else if (holder.committedStep !== start.startStep) {
      throw new Error(`asked to continue stage ${holder.stage} from step ${start.startStep} in memory, but this peer holds step ${holder.committedStep}`);
    }
    holder.committedStep = start.startStep;
  }

  /** Where this step's time went (every stage; the dashboard's Gantt), and the loss (last stage). */
  private report(step: number, report: StageStepReport, timeline: Timeline, sliceSize: number): void {
    const { link, plan } = this.deps;
    const spans = timeline.spans.filter((span) => span.step === step && span.lane === 'compute');
    const sum = (kinds: string[]) => spans.filter((span) => kinds.includes(span.kind)).reduce((total, span) => total + span.durationUs, 0) / 1000;
    sendQuietly(link, {
      type: 'stage-report',
      epoch: this.epoch,
      stage: this.assignment.stage,
      step,
      stepMs: report.stepMs,
      computeMs: sum(['forward', 'backward']),
      idleMs: sum(['idle']),
      spans: spans.slice(0, 4_096).map((span) => ({ kind: span.kind, micro: span.micro ?? null, startUs: span.startUs, durationUs: span.durationUs })),
    });
    if (report.loss !== undefined) {
      sendQuietly(link, {
        type: 'progress',
        epoch: this.epoch,
        step,
        loss: report.loss,
        ...(report.accuracy !== undefined ? { accuracy: report.accuracy } : {}),
        // This replica's slice: the coordinator weights each replica's loss by it.
        samples: sliceSize,
        samplesPerSecond: (plan.batchSize * 1000) / Math.max(1e-3, report.stepMs),
        // A pipeline's "exchange" is the waiting for neighbours' activations and gradients.
        exchangeMs: sum(['idle']),
        computeMs: sum(['forward', 'backward']),
        rssBytes: process.memoryUsage.rss(),
      });
    }
    // Only the newest step is reported: keep the timeline from growing over a long run.
    timeline.spans.splice(0);
    timeline.steps.splice(0);
  }

  private forgetSyncs(step: number, action: StageSync['action']): void {
    for (let i = this.syncs.length - 1; i >= 0; i--) if (this.syncs[i]!.action === action && this.syncs[i]!.step <= step) this.syncs.splice(i, 1);
  }

  /** After the last step: every stage's final part, then the test set through the pipeline. */
  private async finishJob(start: Start, lastLoss: number | null): Promise<void> {
    const { holder, uploader, link, job, log } = this.deps;
    const { stage, stages } = this.assignment;
    await uploader.start(holder, this.epoch, lastLoss, this.slices?.savedPosition);
    await uploader.settle();
    const evaluation = await evaluateThroughPipeline({
      stage: holder.module,
      stages,
      neighbours: this.joined!.neighbours,
      test: this.deps.test,
      batchSize: job.evalBatchSize,
      numClasses: this.deps.numClasses,
      outputKind: this.deps.outputKind,
      firstTag: start.totalSteps + 1,
      timeoutMs: job.stepTimeoutSeconds * 1000,
      onBatch: (done, total) => sendQuietly(link, { type: 'evaluating', epoch: this.epoch, done, total }),
    });
    if (!evaluation) return;
    log.info({ step: holder.committedStep, stage, accuracy: evaluation.accuracy, loss: evaluation.loss }, 'final evaluation through the pipeline');
    await link.sendControl({ type: 'result', epoch: this.epoch, step: holder.committedStep, accuracy: evaluation.accuracy, loss: evaluation.loss, samples: evaluation.samples });
  }

  protected failure(error: unknown): StageEpochOutcome {
    const aborted = error instanceof EpochAborted || this.scope.aborted;
    const reason = aborted ? (this.scope.reason ?? (error as Error).message) : (error as Error).message;
    if (!aborted) this.deps.log.warn({ epoch: this.epoch, err: error }, 'pipeline stage failed');
    return { epoch: this.epoch, committedStep: this.deps.holder.committedStep, outcome: aborted ? 'aborted' : 'failed', reason: reason.slice(0, 1_900) };
  }

  private async closeLinks(reason: string): Promise<void> {
    const joined = this.joined;
    const ring = this.replicaRing;
    this.joined = undefined;
    this.replicaRing = undefined;
    await Promise.allSettled([joined?.abort(reason), this.node.close(), ring?.close(), this.replicaNode?.close()]);
  }
}
