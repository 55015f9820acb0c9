import os from 'node:os';
import { parseClusterJob, type ClusterJob } from '../../coordinator/job/cluster-job.js';
import { trainingPlan, type TrainingPlan } from '../../coordinator/job/training-plan.js';
import type { ClusterMessageOf } from '../../coordinator/protocol/cluster-messages.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import { JobValidationError } from '../../shared/job/schema.js';
import type { PeerReadinessReporter } from '../../shared/health/index.js';
import type { Logger } from '../../shared/log/logger.js';
import { secretSourceOf, type SecretSource } from '../../shared/transport/index.js';
import { RingNode } from '../allreduce/ring-setup.js';
import { attachDistillationWorker } from '../distillation/distillation-worker.js';
import { CheckpointUploader } from './checkpoint-uploader.js';
import { sendQuietly, type CoordinatorLink } from './coordinator-link.js';
import { EpochRun } from './epoch-run.js';
import { GlobalBatches } from './global-batches.js';
import type { PeerResources, PreparedJob } from './peer-resources.js';
import { attachPipelineStages } from './pipeline/pipeline-stages.js';

export type SessionEnd =
  | { kind: 'shutdown'; success: boolean; reason: string }
  | { kind: 'lost'; reason: string }
  | { kind: 'refused'; reason: string; retry: boolean };

export interface PeerSessionOptions extends SecretSource {
  cluster: string;
  nodeId: string;
  /** Address the ring listener binds (the coordinator tells neighbours the address it sees us at). */
  ringHost: string;
  resources: PeerResources;
  log: Logger;
  /** Told when this peer joins and leaves epochs (its readiness probe). */
  readiness?: PeerReadinessReporter;
}

interface ActiveJob {
  runId: string;
  job: ClusterJob;
  plan: TrainingPlan;
  prepared: PreparedJob;
  batches: GlobalBatches;
  uploader: CheckpointUploader;
}

/**
 * One connection to a coordinator, from `join` to `shutdown` or a lost link. Messages that change
 * what the peer is doing (welcome, assign, start) are handled one after another, in order; the
 * ones that must act at once (abort, stop, checkpoint, restore, shutdown) bypass that queue.
 */
export class PeerSession {
  readonly ended: Promise<SessionEnd>;
  private endSession!: (end: SessionEnd) => void;
  private queue: Promise<void> = Promise.resolve();
  private active: ActiveJob | undefined;
  private current: EpochRun | undefined;
  private closed = false;

  constructor(
    private readonly link: CoordinatorLink,
    private readonly options: PeerSessionOptions,
  ) {
    this.ended = new Promise((resolve) => (this.endSession = resolve));
    const { log } = options;
    link.onControl('welcome', (message) => this.enqueue(() => this.onWelcome(message)));
    link.onControl('assign', (message) => this.enqueue(() => this.onAssign(message)));
    link.onControl('start', (message) => this.enqueue(async () => this.onStart(message)));
    link.onControl('restore', (message) => {
      if (this.current?.epoch === message.epoch) this.current.deliverRestore(message);
    });
    link.onControl('checkpoint-request', (message) => {
      if (this.current?.epoch === message.epoch) this.current.requestCheckpoint();
    });
    link.onControl('stop-request', (message) => {
      if (this.current?.epoch === message.epoch) this.current.requestStop();
    });
    link.onControl('abort', (message) => {
      log.info({ epoch: message.epoch, reason: message.reason }, 'epoch aborted by the coordinator');
      if (this.current?.epoch === message.epoch) this.current.abort(message.reason);
    });
    link.onControl('refuse', (message) => this.finish({ kind: 'refused', reason: message.reason, retry: message.retry }));
    link.onControl('shutdown', (message) => this.finish({ kind: 'shutdown', success: message.success, reason: message.reason }));
    link.once('close', (info) => this.finish({ kind: 'lost', reason: info.reason }));
    // Distillation rounds use the prepared job's backend and data between (not during) epochs.
    attachDistillationWorker(link, { ...secretSourceOf(options), cluster: options.cluster, nodeId: options.nodeId, ringHost: options.ringHost, log, resources: () => this.distillationResources() });
    // Pipeline mode: the coordinator assigns stages instead of ranks (peer/session/pipeline/).
    attachPipelineStages(link, { ...secretSourceOf(options), cluster: options.cluster, nodeId: options.nodeId, ringHost: options.ringHost, log, ...(options.readiness ? { readiness: options.readiness } : {}), active: () => this.active });
    sendQuietly(link, { type: 'join', hostname: os.hostname(), pid: process.pid, backend: 'pending' });
  }

  /** Leaves: ends the epoch in progress and closes the link. */
  close(reason: string): void {
    this.finish({ kind: 'lost', reason });
  }

  private finish(end: SessionEnd): void {
    if (this.closed) return;
    this.closed = true;
    this.current?.abort(end.kind === 'lost' ? `coordinator link lost: ${end.reason}` : end.reason);
    const current = this.current;
    void (async () => {
      // Let the step in progress end before reporting, so the caller sees a quiet peer.
      await current?.ended();
      await this.active?.uploader.settle();
      if (this.link.isOpen) this.link.close(end.kind === 'shutdown' ? 'job over' : end.reason);
      this.endSession(end);
    })();
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((error: unknown) => {
      this.options.log.error({ err: error }, 'peer session error');
      this.finish({ kind: 'lost', reason: (error as Error).message });
    });
  }

  private async onWelcome(message: ClusterMessageOf<'welcome'>): Promise<void> {
    const { log, resources } = this.options;
    let job: ClusterJob;
    try {
      job = parseClusterJob(message.job, `job from the coordinator ${message.coordinatorId}`);
    } catch (error) {
      const text = error instanceof JobValidationError ? error.message : (error as Error).message;
      log.error(text);
      sendQuietly(this.link, { type: 'unfit', runId: message.runId, message: text.slice(0, 1_900) });
      return;
    }
    log.info({ runId: message.runId, model: job.model, batchSize: job.batchSize }, 'received the job; preparing');
    let prepared: PreparedJob;
    let plan: TrainingPlan;
    try {
      prepared = await resources.prepare(job, message.runId);
      // A global batch larger than the dataset is the job's mistake: say so instead of failing later.
      plan = trainingPlan(job, prepared.data.trainCount);
    } catch (error) {
      log.error({ err: error }, 'cannot prepare the job');
      sendQuietly(this.link, { type: 'unfit', runId: message.runId, message: (error as Error).message.slice(0, 1_900) });
      return;
    }
    this.active = {
      runId: message.runId,
      job,
      plan,
      prepared,
      batches: new GlobalBatches(prepared.data.train, plan, job.seed, prepared.data.prefetch),
      uploader: new CheckpointUploader(this.link, job, log),
    };
    const { layout } = prepared;
    sendQuietly(this.link, {
      type: 'prepared',
      runId: message.runId,
      backend: prepared.backend,
      trainSamples: prepared.data.trainCount,
      stateElements: layout.elements,
      // The coordinator refuses a peer whose layout differs from the others'; the data's fingerprint
      // rides along, so files that differ behind the same path are refused the same way.
      stateLayout: `${layout.hash}-${prepared.data.fingerprint}`,
    });
  }

  private async onAssign(message: ClusterMessageOf<'assign'>): Promise<void> {
    const active = this.active;
    if (!active) throw new Error(`assigned to epoch ${message.epoch} before the job was prepared`);
    await this.endCurrentEpoch(`superseded by epoch ${message.epoch}`);
    const state = active.prepared.state;
    if (!state) throw new Error(`assigned a data-parallel rank in epoch ${message.epoch}, but the job is a pipeline job`);
    const { cluster, nodeId, ringHost, log } = this.options;
    const node = await RingNode.listen({
      rank: message.rank,
      worldSize: message.worldSize,
      epoch: message.epoch,
      cluster,
      nodeId,
      host: ringHost,
      port: 0,
      logger: log,
      ...secretSourceOf(this.options),
    });
    this.current = new EpochRun(message, node, {
      link: this.link,
      job: active.job,
      plan: active.plan,
      state,
      batches: active.batches,
      test: active.prepared.data.test,
      numClasses: active.prepared.data.numClasses,
      uploader: active.uploader,
      log,
    });
    log.info({ epoch: message.epoch, rank: message.rank, worldSize: message.worldSize }, 'assigned');
    this.options.readiness?.assigned(message.epoch, message.rank, message.worldSize);
    sendQuietly(this.link, { type: 'ready', epoch: message.epoch, ringPort: node.address?.port ?? null, committedStep: state.committedStep });
  }

  private onStart(message: ClusterMessageOf<'start'>): void {
    const run = this.current;
    if (!run || run.epoch !== message.epoch) return;
    this.options.readiness?.training(message.epoch);
    void run.start(message).then((outcome) => {
      this.options.log.info({ ...outcome }, 'epoch ended');
      this.options.readiness?.epochEnded(message.epoch, outcome.outcome);
      sendQuietly(this.link, { type: 'epoch-ended', ...outcome });
    });
  }

  /** Distillation rounds read MNIST in memory; a job on another dataset offers them none. */
  private distillationResources(): { backend: string; train: ImageDataset; test: ImageDataset } | undefined {
    const prepared = this.active?.prepared;
    const images = prepared?.data.images;
    return prepared && images ? { backend: prepared.backend, train: images.train, test: images.test } : undefined;
  }

  private async endCurrentEpoch(reason: string): Promise<void> {
    const run = this.current;
    if (!run) return;
    run.abort(reason);
    await run.ended();
    this.current = undefined;
  }
}
