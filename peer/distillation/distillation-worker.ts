import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeTable, decodeTable, type SoftTargetTable } from '../../coordinator/distillation/soft-target-table.js';
import { DISTILL_FRAME_EPOCH } from '../../coordinator/distillation/distillation-messages.js';
import type { TrainingPhase } from '../../coordinator/distillation/distillation-messages.js';
import { parseClusterJob } from '../../coordinator/job/cluster-job.js';
import type { ClusterMessageOf } from '../../coordinator/protocol/cluster-messages.js';
import { describeFiles, receiveFiles, sendFiles, type TransferFile } from '../../coordinator/protocol/file-transfer.js';
import type { ImageDataset } from '../../shared/data/mnist.js';
import type { Logger } from '../../shared/log/logger.js';
import { secretSourceOf, type SecretSource } from '../../shared/transport/index.js';
import { RingCollective } from '../allreduce/ring-collective.js';
import { RingNode, type JoinedRing } from '../allreduce/ring-setup.js';
import { sendQuietly, type CoordinatorLink } from '../session/coordinator-link.js';
import { evaluateResponsively } from '../session/responsive-evaluation.js';
import { TrainingState } from '../session/training-state.js';
import { inferenceMsPerSample } from './inference-speed.js';
import { modelFromFiles, modelToFiles } from './model-from-files.js';
import { MODEL_JSON_NAME } from '../../coordinator/distillation/model-files.js';
import { trainStudent } from './student-training.js';
import { teacherTargets } from './teacher-targets.js';

/** What the worker needs from the peer's session: the prepared job's backend and data. */
export interface DistillationWorkerOptions extends SecretSource {
  cluster: string;
  nodeId: string;
  ringHost: string;
  log: Logger;
  /** The backend and MNIST of the job this peer prepared; undefined until it has. */
  resources: () => { backend: string; train: ImageDataset; test: ImageDataset } | undefined;
}

const TRANSFER_TIMEOUT_MS = 120_000;
const RING_JOIN_TIMEOUT_MS = 30_000;
/** How long a peer waits for `distill-go` after saying it is ready (the coordinator waits on all). */
const GO_TIMEOUT_MS = 120_000;

/**
 * The peer's side of distillation rounds: computes soft targets for its shard, trains a student as
 * one rank of a ring, measures models. Tasks run one at a time, in arrival order; a failure is
 * reported to the coordinator (`distill-failed`), never thrown into the session.
 */
export class DistillationWorker {
  private queue: Promise<void> = Promise.resolve();
  private cancelledRounds = new Set<number>();
  /** Training attempts the coordinator ended because a member was lost (by frameStep). */
  private abortedAttempts = new Set<number>();
  /**
   * The student being trained, kept across attempts: when a member is lost, this peer's weights and
   * optimizer state at its last committed step are what the next attempt continues from.
   */
  private student: { round: number; phase: TrainingPhase; state: TrainingState } | undefined;
  /** Ends a task's wait for its files (by frameStep), when its attempt or round is ended. */
  private readonly stoppers = new Map<number, { round: number; stop: () => void }>();
  private ring: JoinedRing | undefined;
  private node: RingNode | undefined;

  constructor(
    private readonly link: CoordinatorLink,
    private readonly options: DistillationWorkerOptions,
  ) {
    link.onControl('distill-targets-request', (message) => this.enqueue(message.round, message.frameStep, () => this.computeTargets(message)));
    link.onControl('distill-train-request', (message) => this.enqueue(message.round, message.frameStep, () => this.trainStudent(message)));
    link.onControl('distill-measure-request', (message) => this.enqueue(message.round, message.frameStep, () => this.measure(message)));
    link.onControl('distill-cancel', (message) => {
      options.log.info({ round: message.round, reason: message.reason }, 'distillation round cancelled by the coordinator');
      // The student state is not freed here (a task may still be using it): the next round's student replaces it.
      this.cancelledRounds.add(message.round);
      for (const stopper of this.stoppers.values()) if (stopper.round === message.round) stopper.stop();
      void this.closeRing();
    });
    link.onControl('distill-abort', (message) => {
      options.log.info({ round: message.round, phase: message.phase, reason: message.reason }, 'training attempt ended by the coordinator; keeping the committed student state');
      this.abortedAttempts.add(message.frameStep);
      this.stoppers.get(message.frameStep)?.stop();
      void this.closeRing();
    });
  }

  private enqueue(round: number, frameStep: number, task: () => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      if (this.cancelledRounds.has(round) || this.abortedAttempts.has(frameStep)) return;
      try {
        await task();
      } catch (error) {
        const reason = `${this.options.nodeId}: ${(error as Error).message}`.slice(0, 1_900);
        this.options.log.warn({ round, err: error }, 'distillation task failed');
        sendQuietly(this.link, { type: 'distill-failed', round, frameStep, reason });
      } finally {
        await this.closeRing();
      }
    });
  }

  private need(): { backend: string; train: ImageDataset; test: ImageDataset; inputShape: number[] } {
    const resources = this.options.resources();
    if (!resources) throw new Error('this peer has not prepared a job yet (no backend or data loaded)');
    const { train } = resources;
    return { ...resources, inputShape: [train.height, train.width, train.channels] };
  }

  /** The files of a task; given up at once when the coordinator ends the task's attempt or round (it sends no more). */
  private receive(round: number, frameStep: number, entries: { name: string; bytes: number }[]): Promise<TransferFile[]> {
    const files = receiveFiles(this.link, { epoch: DISTILL_FRAME_EPOCH, step: frameStep }, entries, TRANSFER_TIMEOUT_MS);
    files.catch(() => {});
    let stop!: () => void;
    const stopped = new Promise<never>((_, reject) => (stop = () => reject(new Error('ended by the coordinator'))));
    stopped.catch(() => {});
    this.stoppers.set(frameStep, { round, stop });
    if (this.cancelledRounds.has(round) || this.abortedAttempts.has(frameStep)) stop();
    return Promise.race([files, stopped]).finally(() => this.stoppers.delete(frameStep));
  }

  private async computeTargets(message: ClusterMessageOf<'distill-targets-request'>): Promise<void> {
    const { log } = this.options;
    const { train, inputShape } = this.need();
    const teacher = await modelFromFiles(await this.receive(message.round, message.frameStep, message.teacher), 'the teacher');
    try {
      const began = performance.now();
      const table = await teacherTargets(teacher, train, message, inputShape, () => this.cancelledRounds.has(message.round));
      log.info({ round: message.round, start: message.start, end: message.end, seconds: ((performance.now() - began) / 1000).toFixed(1) }, 'soft targets of this shard computed');
      const bytes = encodeTable(table);
      const file: TransferFile = { name: 'soft-targets', data: bytes };
      await this.link.sendControl({ type: 'distill-targets', round: message.round, frameStep: message.frameStep, start: message.start, count: table.count, table: describeFiles([file])[0]! });
      await sendFiles(this.link, { epoch: DISTILL_FRAME_EPOCH, step: message.frameStep }, [file], TRANSFER_TIMEOUT_MS);
    } finally {
      teacher.dispose();
    }
  }

  private async trainStudent(message: ClusterMessageOf<'distill-train-request'>): Promise<void> {
    const { log, cluster, nodeId, ringHost } = this.options;
    const { train, test, inputShape } = this.need();
    const { round, phase, rank, worldSize, training, frameStep } = message;
    const received = await this.receive(round, frameStep, [...(message.targets ? [message.targets] : []), ...message.student]);
    const table: SoftTargetTable | undefined = message.targets ? decodeTable(received[0]!.data, 'the soft targets from the coordinator') : undefined;
    const state = await this.studentState(round, phase, training, message.targets ? received.slice(1) : received);
    const stopped = (): boolean => this.cancelledRounds.has(round) || this.abortedAttempts.has(frameStep);
    this.node = await RingNode.listen({ rank, worldSize, epoch: message.ringEpoch, cluster, nodeId, host: ringHost, port: 0, logger: log, ...secretSourceOf(this.options) });
    await this.link.sendControl({ type: 'distill-ready', round, phase, frameStep, ringPort: this.node.address?.port ?? null, committedStep: Math.max(0, state.committedStep) });
    const go = await this.waitForGo(round, phase, frameStep);
    this.ring = await this.node.join(go.next ?? undefined, { timeoutMs: RING_JOIN_TIMEOUT_MS });
    const ring = new RingCollective(this.ring.membership, { timeoutMs: training.stepTimeoutSeconds * 1000 });
    // Every rank takes the root's weights and optimizer state: the newest committed step any member holds.
    const flat = new Float32Array(state.layout.elements);
    if (rank === go.stateRoot) {
      if (Math.max(0, state.committedStep) !== go.startStep) throw new Error(`asked to provide the student's state of step ${go.startStep}, but this peer holds step ${state.committedStep}`);
      await state.exportFlat(flat);
    }
    if (worldSize > 1) await ring.broadcast(flat, go.stateRoot);
    if (rank !== go.stateRoot) await state.importFlat(flat, go.startStep);
    state.committedStep = go.startStep;
    log.info({ round, phase, rank, worldSize, startStep: go.startStep, steps: training.steps, alpha: training.alpha }, go.startStep > 0 ? `training the student from step ${go.startStep}` : 'training the student');
    const result = await trainStudent({
      model: state.model,
      optimizer: state.optimizer,
      training,
      train,
      inputShape,
      table,
      ring,
      startStep: go.startStep,
      onCommitted: (step) => (state.committedStep = step),
      onProgress: (step, totalSteps, loss) => sendQuietly(this.link, { type: 'distill-progress', round, phase, step, totalSteps, loss }),
      isCancelled: stopped,
    });
    await this.closeRing();
    let accuracy: number | null = null;
    let testLoss: number | null = null;
    let files: TransferFile[] = [];
    if (rank === 0) {
      const evaluation = await evaluateResponsively(state.model, test, { batchSize: training.evalBatchSize, outputKind: 'logits', inputShape });
      ({ accuracy, loss: testLoss } = evaluation);
      files = await modelToFiles(state.model);
      log.info({ round, phase, accuracy, trainSeconds: result.trainSeconds.toFixed(1) }, 'student trained');
    }
    await this.link.sendControl({ type: 'distill-trained', round, phase, frameStep, rank, accuracy, testLoss, trainSeconds: result.trainSeconds, model: describeFiles(files) });
    await sendFiles(this.link, { epoch: DISTILL_FRAME_EPOCH, step: frameStep }, files, TRANSFER_TIMEOUT_MS);
    this.dropStudent();
  }

  /** This round and phase's student: the one kept from an earlier attempt, or a new one (initial weights, step 0). */
  private async studentState(round: number, phase: TrainingPhase, training: ClusterMessageOf<'distill-train-request'>['training'], files: TransferFile[]): Promise<TrainingState> {
    if (this.student && this.student.round === round && this.student.phase === phase) return this.student.state;
    this.dropStudent();
    const { train } = this.need();
    let dir: string | undefined;
    try {
      // A student given as files is loaded like a job's model file (TrainingState builds job models).
      if (!training.zooModel) {
        if (!files.some((file) => file.name === MODEL_JSON_NAME)) throw new Error(`the student's files lack ${MODEL_JSON_NAME}`);
        dir = await mkdtemp(path.join(tmpdir(), 'ringpipe-student-'));
        for (const file of files) await writeFile(path.join(dir, path.basename(file.name)), file.data);
      }
      const job = parseClusterJob({ model: training.zooModel ?? dir, seed: training.seed, optimizer: training.optimizer, learningRate: training.learningRate }, 'the student');
      const state = await TrainingState.create(job, train);
      this.student = { round, phase, state };
      return state;
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }

  private dropStudent(): void {
    this.student?.state.dispose();
    this.student = undefined;
  }

  /**
   * The coordinator's go for this round and phase. A subscription, not nextControl: a cancelled
   * round must neither keep this peer waiting nor leave a waiter that swallows a later round's go.
   */
  private waitForGo(round: number, phase: string, frameStep: number): Promise<ClusterMessageOf<'distill-go'>> {
    return new Promise((resolve, reject) => {
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        clearInterval(cancelCheck);
        unsubscribe();
        settle();
      };
      const unsubscribe = this.link.onControl('distill-go', (message) => {
        if (message.round === round && message.phase === phase && message.frameStep === frameStep) finish(() => resolve(message));
      });
      const timer = setTimeout(() => finish(() => reject(new Error(`no go from the coordinator within ${GO_TIMEOUT_MS / 1000} s`))), GO_TIMEOUT_MS);
      const cancelCheck = setInterval(() => {
        if (this.cancelledRounds.has(round) || this.abortedAttempts.has(frameStep)) finish(() => reject(new Error('cancelled by the coordinator')));
      }, 200);
    });
  }

  private async measure(message: ClusterMessageOf<'distill-measure-request'>): Promise<void> {
    const { backend, test, inputShape } = this.need();
    const model = await modelFromFiles(await this.receive(message.round, message.frameStep, message.model), message.name);
    try {
      const evaluation = await evaluateResponsively(model, test, { batchSize: message.evalBatchSize, outputKind: 'logits', inputShape });
      const msPerSample = await inferenceMsPerSample(model, test, inputShape, message.inferenceBatch, message.inferenceSamples);
      await this.link.sendControl({
        type: 'distill-measured',
        round: message.round,
        name: message.name,
        accuracy: evaluation.accuracy,
        testLoss: evaluation.loss,
        testSamples: evaluation.samples,
        msPerSample,
        inferenceBatch: message.inferenceBatch,
        backend,
      });
    } finally {
      model.dispose();
    }
  }

  private async closeRing(): Promise<void> {
    const ring = this.ring;
    const node = this.node;
    this.ring = undefined;
    this.node = undefined;
    await Promise.allSettled([ring?.close(), node?.close()]);
  }
}

/** Attaches the distillation worker to a peer's coordinator link (one line in the peer session). */
export function attachDistillationWorker(link: CoordinatorLink, options: DistillationWorkerOptions): DistillationWorker {
  return new DistillationWorker(link, options);
}
