import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { advertise, type Advertisement } from '../shared/discovery/index.js';
import { createLogger, type Logger } from '../shared/log/logger.js';
import { listen, secretSourceOf, type LinkServer, type SecretSource } from '../shared/transport/index.js';
import { MODEL_FILE } from './checkpoint/checkpoint-layout.js';
import { CheckpointReceiver } from './checkpoint/checkpoint-receiver.js';
import { CheckpointStore, type StoredCheckpoint } from './checkpoint/checkpoint-store.js';
import { DistillationRounds } from './distillation/distillation-rounds.js';
import type { TrainingStateRecord } from './checkpoint/training-state-record.js';
import { EpochController, type EpochOutcome } from './epoch/epoch-controller.js';
import type { EpochRunner } from './epoch/epoch-watch.js';
import { PipelineEpochController } from './epoch/pipeline-epoch-controller.js';
import { StageTimelines, type BubbleFigures } from './epoch/stage-timelines.js';
import type { TimelineData } from '../peer/pipeline/timeline/timeline.js';
import { StageCheckpointCollector } from './checkpoint/stage-checkpoint-collector.js';
import { splitIntoStageParts } from './checkpoint/pipeline-checkpoint.js';
import { planPipeline, type PipelinePlan } from './job/pipeline-plan.js';
import { minReplicasOf, replicasWanted } from './job/pipeline-section.js';
import { trajectoryDifferences, type ClusterJob } from './job/cluster-job.js';
import { dataPositionAfter, trainingPlan, type TrainingPlan } from './job/training-plan.js';
import { PeerRegistry } from './membership/peer-registry.js';
import { LossLog } from './metrics/loss-log.js';
import { clusterMessages, COORDINATOR_ROLE, type ClusterMessage, type ClusterMessageOf } from './protocol/cluster-messages.js';
import { waitForPeersOrTimeout } from './rendezvous/wait-for-peers.js';
import { CoordinatorState } from './state/coordinator-state.js';

export interface CoordinatorOptions extends SecretSource {
  job: ClusterJob;
  jobName: string;
  cluster: string;
  /** Folder for metrics.jsonl, result.json and (by default) checkpoints/. */
  runDir: string;
  /** Address to bind; default all interfaces with a secret, loopback without. */
  host?: string;
  port?: number;
  /** Advertise on mDNS (default true). */
  mdns?: boolean;
  interface?: string;
  nodeId?: string;
  logger?: Logger;
}

export interface CoordinatorResult {
  outcome: 'finished' | 'failed' | 'cancelled';
  message: string;
  accuracy?: number;
  testLoss?: number;
  steps?: number;
  checkpoint?: string;
  model?: string;
  resumedFrom?: number;
  /** Pipeline mode: the split and the measured bubble. */
  pipeline?: { balance: number[]; rule: string; replicas: number } & BubbleFigures;
}

/** Fails a job that keeps failing before a single step completes (e.g. a peer whose ring port is firewalled). */
const MAX_EPOCHS_WITHOUT_PROGRESS = 8;

/**
 * The coordinator: admits peers, forms membership epochs, keeps checkpoints, and recovers from
 * lost peers by forming the next epoch with the survivors. `start()` binds and advertises;
 * `run()` drives the job to its end and returns what happened; `stop()` ends it early (Ctrl+C)
 * after asking for a last checkpoint.
 */
export class Coordinator {
  readonly state: CoordinatorState;
  readonly runId = randomBytes(6).toString('hex');
  readonly store: CheckpointStore;
  /** Knowledge-distillation rounds on this coordinator's peers: `distillation.start(spec)` (see coordinator/distillation/). */
  readonly distillation: DistillationRounds;
  private readonly log: Logger;
  private readonly nodeId: string;
  /** Who is connected; its events (progress, gone…) feed the dashboard. */
  readonly registry: PeerRegistry;
  private readonly lossLog: LossLog;
  private readonly receiver: CheckpointReceiver;
  private server: LinkServer<ClusterMessage> | undefined;
  private advertisement: Advertisement | undefined;
  private controller: EpochRunner | undefined;
  /** Pipeline mode: the epoch controller (also says how many replicas the last epoch had). */
  private pipelineController: PipelineEpochController | undefined;
  /** Pipeline mode: joins the stages' checkpoint parts; the split, decided once at start(). */
  private readonly collector: StageCheckpointCollector;
  private pipelinePlan: PipelinePlan | undefined;
  /** Pipeline mode: the stages' newest timelines (dashboard) and the measured bubble. */
  private readonly stageTimelines = new StageTimelines((timelines) => this.timelineListeners.forEach((listener) => listener(timelines)));
  private readonly timelineListeners = new Set<(timelines: TimelineData[]) => void>();
  private plan: TrainingPlan | undefined;
  private epoch = 0;
  private worldSize = 1;
  private resumedFrom: number | undefined;
  private stopReason: string | undefined;
  private pausedFor: { reason: string; resumed: Promise<void>; resume: () => void } | undefined;
  private resolveStopped!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));

  constructor(private readonly options: CoordinatorOptions) {
    const { job } = options;
    this.log = options.logger ?? createLogger('coordinator');
    this.nodeId = options.nodeId ?? `coordinator-${os.hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 30) || 'host'}-${process.pid}`;
    this.state = new CoordinatorState({ cluster: options.cluster, jobName: options.jobName, runId: this.runId });
    const checkpointDir = job.checkpoint.dir ?? path.join(options.runDir, 'checkpoints');
    this.store = new CheckpointStore(checkpointDir, job.checkpoint.keep, this.log);
    this.lossLog = new LossLog(path.join(options.runDir, 'metrics.jsonl'), (point) => this.state.addLossPoint(point));
    this.registry = new PeerRegistry({ runId: this.runId, coordinatorId: this.nodeId, job: job as unknown as Record<string, unknown>, log: this.log });
    this.receiver = new CheckpointReceiver(this.store, this.log, (message) => this.recordFor(message), (stored) => this.onCheckpointWritten(stored));
    this.registry.on('checkpoint', (peer, message) => this.receiver.handle(peer, message));
    this.collector = new StageCheckpointCollector(this.store, this.log, (message) => this.recordFor(message), (stored) => this.onCheckpointWritten(stored));
    this.registry.on('stage-checkpoint', (peer, message) => this.collector.handle(peer, message));
    // Every progress report, also an old epoch's straggler: the loss log decides what still counts.
    // After the other listeners of the same report (a microtask later): the dashboard's step series
    // must hold a step's reports before the loss log completes its point, whoever subscribed first.
    this.registry.on('progress', (_peer, message) => queueMicrotask(() => this.lossLog.report(message.epoch, message.step, message.loss, message.samples)));
    this.registry.on('prepared', () => this.publishPeers());
    this.registry.on('gone', () => this.publishPeers());
    this.distillation = new DistillationRounds({
      registry: this.registry,
      runDir: options.runDir,
      log: this.log,
      publish: (view) => this.state.update({ distillation: view }),
      busyReason: () => (this.controller ? 'the cluster is training its job; start a round before or instead of it' : undefined),
      howToJoin: () => `Start peers with \`npm run peer -- --coordinator ${this.describeAddress()}\` (same RINGPIPE_SECRET and --cluster ${this.options.cluster}).`,
    });
  }

  get job(): ClusterJob {
    return this.options.job;
  }

  /** Where peers connect (after start). */
  get address(): { host: string; port: number } {
    if (!this.server) throw new Error('the coordinator is not listening yet');
    return { host: this.server.host, port: this.server.port };
  }

  /** Loads the newest good checkpoint, binds the port and advertises. */
  async start(): Promise<void> {
    const { job, cluster } = this.options;
    await this.store.open();
    await this.lossLog.open();
    if (job.mode === 'pipeline') {
      this.pipelinePlan = await planPipeline(job);
      const { balance, rule, layers } = this.pipelinePlan;
      this.log.info({ balance, rule, stages: layers.map((stage, i) => `stage ${i}: layers ${stage.first}–${stage.first + stage.names.length - 1} (${stage.names.join(', ')})`) }, `pipeline of ${balance.length} stages, balanced by ${rule}: [${balance.join(', ')}]`);
    }
    const resume = await this.store.loadNewestGood();
    if (resume) {
      const differences = trajectoryDifferences(resume.state.job, job);
      if (differences.length > 0) {
        throw new Error(
          `the checkpoints in ${this.store.dir} were written by a different job (${differences.join('; ')}). ` +
            'Resume with the same job, or start over with --fresh (the old checkpoints are set aside), or choose another --run-dir.',
        );
      }
      // A pipeline checkpoint is restored stage by stage: it must have been cut the same way.
      if (this.pipelinePlan) splitIntoStageParts(resume.files, resume.step, this.pipelinePlan.balance);
      this.resumedFrom = resume.step;
      this.log.info({ checkpoint: resume.dir, step: resume.step }, `resuming from the checkpoint of step ${resume.step}`);
    }
    const host = this.options.host ?? 'auto';
    this.server = await listen<ClusterMessage>({
      ...secretSourceOf(this.options),
      host: host === 'auto' ? defaultBindHost(this.options) : host,
      port: this.options.port ?? 0,
      cluster,
      nodeId: this.nodeId,
      role: COORDINATOR_ROLE,
      messages: clusterMessages,
      logger: this.log,
      onLink: (link) => this.registry.accept(link),
      onRefused: (refused) => this.registry.refused(refused),
    });
    if (this.options.mdns !== false) {
      try {
        this.advertisement = await advertise({
          clusterName: cluster,
          role: 'coordinator',
          nodeId: this.nodeId,
          port: this.server.port,
          backend: 'none',
          freeMemoryBytes: os.freemem(),
          ...(this.options.interface ? { interface: this.options.interface } : {}),
          logger: this.log,
        });
      } catch (error) {
        this.log.warn({ err: error }, `cannot advertise on mDNS (${(error as Error).message}); peers must be given --coordinator ${this.server.host}:${this.server.port}`);
      }
    }
    this.state.update({ address: `${this.server.host}:${this.server.port}`, phase: 'waiting-for-peers' });
  }

  /** Drives the job to its end; always shuts the peers down and closes the port. */
  async run(): Promise<CoordinatorResult> {
    let result: CoordinatorResult;
    try {
      result = await this.drive();
    } catch (error) {
      result = { outcome: 'failed', message: (error as Error).message };
    }
    this.state.update({ phase: result.outcome === 'finished' ? 'finished' : result.outcome === 'cancelled' ? 'stopped' : 'failed', detail: result.message });
    if (result.outcome === 'failed') this.log.error(result.message);
    await this.lossLog.flush();
    await writeFile(path.join(this.options.runDir, 'result.json'), `${JSON.stringify({ ...result, runId: this.runId, finishedAt: new Date().toISOString() }, null, 2)}\n`).catch(() => {});
    await this.registry.shutdownAll(result.outcome === 'finished' ? 'the job finished' : `the job ended: ${result.message}`.slice(0, 1_900), result.outcome === 'finished');
    await this.close();
    return result;
  }

  /** Ends the job early: asks for a last checkpoint (bounded wait), then stops the peers. */
  async stop(reason: string): Promise<void> {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.log.warn({ reason }, 'stopping');
    const before = this.store.latest?.step ?? -1;
    if (this.controller?.requestCheckpoint(reason)) {
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && (this.store.latest?.step ?? -1) <= before && this.state.snapshot().phase === 'training') {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await Promise.all([this.receiver.idle(), this.collector.idle()]);
    }
    this.controller?.cancel(reason);
    this.resolveStopped();
  }

  /** Pipeline mode: every stage's timeline of the newest mini-batch all stages finished (the dashboard's Gantt). */
  onStageTimelines(listener: (timelines: TimelineData[]) => void): () => void {
    this.timelineListeners.add(listener);
    return () => this.timelineListeners.delete(listener);
  }

  get paused(): boolean {
    return this.pausedFor !== undefined;
  }

  /**
   * Pauses training (dashboard): the running epoch stops after a step all members agree on and no
   * epoch starts until resume(). Peers stay connected and keep their state. False when not training.
   */
  pause(reason: string): boolean {
    const phase = this.state.snapshot().phase;
    if (this.pausedFor || this.stopReason || !['forming-epoch', 'training', 'recovering'].includes(phase)) return false;
    let resume!: () => void;
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    this.pausedFor = { reason, resumed, resume };
    this.controller?.requestStop(reason);
    this.log.info({ reason }, 'pausing: training stops after the next step the peers agree on');
    return true;
  }

  resume(reason: string): boolean {
    const paused = this.pausedFor;
    if (!paused) return false;
    this.pausedFor = undefined;
    this.log.info({ reason }, 'resuming training');
    paused.resume();
    return true;
  }

  /** Without run(): tells the peers to leave and closes the port (after distillation rounds only). */
  async shutdown(reason: string, success: boolean): Promise<void> {
    this.distillation.cancel(reason);
    await this.registry.shutdownAll(reason, success);
    await this.close();
  }

  /** Asks for a checkpoint now (SIGUSR2); false when no epoch is training. */
  requestCheckpoint(reason: string): boolean {
    return this.controller?.requestCheckpoint(reason) ?? false;
  }

  private async drive(): Promise<CoordinatorResult> {
    const { job } = this.options;
    const howToJoin = `Start peers with \`npm run peer -- --coordinator ${this.describeAddress()}\` (same RINGPIPE_SECRET and --cluster ${this.options.cluster}).`;
    const cancelled = this.stopped;
    // A pipeline needs one peer per stage of each replica; it starts with all R replicas ("auto": as
    // many as have joined, from peers.min's worth, after the grace period) and, after a loss, goes
    // on with as many whole replicas as peers.min allows (minReplicasOf).
    const stages = this.pipelinePlan?.stages;
    const auto = job.pipeline?.replicas === 'auto';
    const replicas = stages ? replicasWanted(job, stages) : 1;
    const minReplicas = stages ? minReplicasOf(job, stages) : 1;
    const peers = stages ? { min: stages * (auto ? minReplicas : replicas), max: stages * replicas } : { min: job.peers.min, max: job.peers.max };
    const purpose = !stages ? '' : auto ? ` (one per stage of each replica of the ${stages}-stage pipeline, "auto": ${minReplicas} to ${replicas} replicas)` : replicas > 1 ? ` (one per stage of each of the ${replicas} replicas of the ${stages}-stage pipeline)` : ` (one per stage of the ${stages}-stage pipeline)`;
    // Below this many peers an epoch cannot form: the wait for more starts.
    const fewest = stages ? stages * minReplicas : peers.min;
    const first = await waitForPeersOrTimeout(this.registry, {
      ...peers,
      graceMs: job.peers.graceSeconds * 1000,
      timeoutMs: job.peers.joinTimeoutSeconds * 1000,
      purpose: `to start the job${purpose}`,
      howToJoin,
      cancelled,
      onChange: (detail) => this.state.update({ phase: 'waiting-for-peers', detail }),
    });
    if (first instanceof Error) return { outcome: 'failed', message: first.message };
    if (first === 'cancelled') return { outcome: 'cancelled', message: this.stopReason ?? 'stopped' };

    // A distillation round holds the peers; training starts once it is over.
    await this.distillation.idle();
    this.plan = trainingPlan(job, this.registry.trainSamples!);
    const shared = { registry: this.registry, store: this.store, lossLog: this.lossLog, state: this.state, job, plan: this.plan, log: this.log };
    this.pipelineController = this.pipelinePlan ? new PipelineEpochController({ ...shared, collector: this.collector, pipeline: this.pipelinePlan, timelines: this.stageTimelines }) : undefined;
    const controller: EpochRunner = this.pipelineController ?? new EpochController({ ...shared, receiver: this.receiver });
    this.controller = controller;
    if (this.stopReason) controller.cancel(this.stopReason);
    let failuresWithoutProgress = 0;
    let lastFailure = '';
    for (;;) {
      if (this.stopReason) return { outcome: 'cancelled', message: this.stopReason, ...this.checkpointFields() };
      if (this.pausedFor) {
        this.state.update({ phase: 'paused', detail: `paused (${this.pausedFor.reason}); the peers keep their state` });
        await Promise.race([this.pausedFor.resumed, cancelled]);
        continue;
      }
      const members = this.registry.prepared().slice(0, peers.max);
      if (members.length < fewest) {
        const below = !stages ? `peers.min ${peers.min}` : minReplicas > 1 ? `the ${fewest} peers of ${minReplicas} replicas of the ${stages}-stage pipeline (peers.min ${job.peers.min})` : `the ${stages} stages of the pipeline`;
        this.state.update({ phase: 'recovering', detail: `${members.length} peers left, below ${below}` });
        this.log.warn({ alive: members.length, min: fewest }, `fewer peers than ${below}; waiting up to ${job.peers.waitSeconds} s for ${stages ? 'a replacement' : 'more'}`);
        const waited = await waitForPeersOrTimeout(this.registry, {
          ...peers,
          min: fewest,
          graceMs: 0,
          timeoutMs: job.peers.waitSeconds * 1000,
          purpose: `to continue training${purpose}`,
          howToJoin,
          cancelled,
          onChange: (detail) => this.state.update({ phase: 'recovering', detail }),
        });
        if (waited instanceof Error) return { outcome: 'failed', message: waited.message, ...this.checkpointFields() };
        continue;
      }
      this.epoch++;
      this.worldSize = members.length;
      const outcome: EpochOutcome = await controller.run(this.epoch, members);
      if (outcome.kind === 'finished') return this.finished(outcome.result);
      if (outcome.kind === 'cancelled') return { outcome: 'cancelled', message: outcome.reason, ...this.checkpointFields() };
      if (outcome.kind === 'stopped') {
        failuresWithoutProgress = 0;
        continue;
      }
      failuresWithoutProgress = outcome.progressed ? 0 : failuresWithoutProgress + 1;
      lastFailure = outcome.reason;
      this.log.warn({ epoch: this.epoch, reason: outcome.reason }, 'epoch failed; re-forming with the peers that are left');
      this.state.update({ phase: 'recovering', detail: outcome.reason });
      if (failuresWithoutProgress >= MAX_EPOCHS_WITHOUT_PROGRESS) {
        return { outcome: 'failed', message: `${failuresWithoutProgress} epochs in a row failed before completing a step; last: ${lastFailure}`, ...this.checkpointFields() };
      }
      // A moment for links of peers that died to be noticed as closed before the next epoch.
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  private finished(result: Omit<ClusterMessageOf<'result'>, 'type'>): CoordinatorResult {
    const fields = this.checkpointFields();
    const message = `test accuracy ${(result.accuracy * 100).toFixed(2)}% (loss ${result.loss.toFixed(4)}, ${result.samples} samples) after ${result.step} steps`;
    this.state.update({ result: { accuracy: result.accuracy, loss: result.loss, step: result.step, checkpoint: fields.checkpoint } });
    const pipeline = this.pipelinePlan
      ? { pipeline: { balance: this.pipelinePlan.balance, rule: this.pipelinePlan.rule, replicas: this.pipelineController?.replicas ?? 1, ...this.stageTimelines.summary() } }
      : {};
    return { outcome: 'finished', message, accuracy: result.accuracy, testLoss: result.loss, steps: result.step, ...fields, ...pipeline };
  }

  private checkpointFields(): Pick<CoordinatorResult, 'checkpoint' | 'model' | 'resumedFrom'> {
    const latest = this.store.latest;
    return {
      ...(latest ? { checkpoint: latest.dir, model: path.join(latest.dir, MODEL_FILE) } : {}),
      ...(this.resumedFrom !== undefined ? { resumedFrom: this.resumedFrom } : {}),
    };
  }

  private recordFor(message: Pick<ClusterMessageOf<'checkpoint'>, 'epoch' | 'step' | 'loss'>): TrainingStateRecord {
    const plan = this.plan!;
    const position = dataPositionAfter(plan, message.step);
    return {
      step: message.step,
      totalSteps: plan.totalSteps,
      epoch: position.epoch,
      dataPosition: position,
      rng: { algorithm: 'xoshiro128** epoch shuffle, seeded from (seed, data epoch)', seed: this.options.job.seed, shuffleEpoch: position.epoch },
      membershipEpoch: message.epoch,
      worldSize: this.worldSize,
      loss: message.loss,
      job: this.options.job as unknown as Record<string, unknown>,
      savedAt: new Date().toISOString(),
    };
  }

  private onCheckpointWritten(stored: StoredCheckpoint): void {
    this.state.addCheckpoint({ step: stored.step, dir: stored.dir, savedAt: new Date().toISOString() }, this.options.job.checkpoint.keep);
  }

  private publishPeers(): void {
    this.state.update({
      peers: this.registry.all().map((peer) => ({
        nodeId: peer.nodeId,
        address: peer.address,
        hostname: peer.hostname,
        status: peer.status,
        backend: peer.prepared?.backend,
        step: peer.step,
      })),
    });
  }

  private describeAddress(): string {
    const { host, port } = this.address;
    return `${host === '0.0.0.0' || host === '::' ? os.hostname() : host}:${port}`;
  }

  private async close(): Promise<void> {
    // Give peers a moment to read the shutdown before their links drop.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await this.server?.close();
    await this.advertisement?.stop();
  }
}

/** Without a secret the transport only allows loopback, so bind there rather than fail. */
function defaultBindHost(source: SecretSource): string {
  const env = source.env ?? process.env;
  const hasSecret = source.secret !== undefined || source.secretFile !== undefined || Boolean(env.RINGPIPE_SECRET) || Boolean(env.RINGPIPE_SECRET_FILE);
  return hasSecret ? '0.0.0.0' : '127.0.0.1';
}
