import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../shared/log/logger.js';
import { writeFileAtomic } from '../../shared/models/file-io.js';
import { chooseStateSource } from '../epoch/choose-state-source.js';
import { sliceOfBatch } from '../job/training-plan.js';
import type { PeerHandle } from '../membership/peer-handle.js';
import type { PeerRegistry } from '../membership/peer-registry.js';
import { describeFiles, receiveFiles, sendFiles, type TransferFile } from '../protocol/file-transfer.js';
import { DISTILL_FRAME_EPOCH, type StudentTraining, type TrainingPhase } from './distillation-messages.js';
import type { ModelFiles } from './model-files.js';
import type { ClusterMessageOf } from '../protocol/cluster-messages.js';
import { PhaseGuard } from './phase-guard.js';
import type { RoundSpec } from './round-spec.js';
import { bytesPerSample, decodeTable, encodeTable, type SoftTargetTable } from './soft-target-table.js';

export type RoundStage = 'waiting-for-peers' | 'soft-targets' | 'distilled' | 'alone' | 'measuring' | 'done' | 'failed';

export interface RoundProgress {
  stage: RoundStage;
  detail: string;
  step?: number;
  totalSteps?: number;
  loss?: number;
}

export interface SoftTargets {
  table: SoftTargetTable;
  bytes: Uint8Array;
  file: string;
  cached: boolean;
  seconds: number;
}

export interface TrainedStudent {
  files: TransferFile[];
  accuracy: number;
  testLoss: number;
  trainSeconds: number;
}

export interface Measured {
  accuracy: number;
  testLoss: number;
  msPerSample: number;
  inferenceBatch: number;
  backend: string;
  measuredBy: string;
}

const TRANSFER_TIMEOUT_MS = 120_000;
/** Ring epochs of distillation rounds start here, far from the cluster's training epochs. */
const RING_EPOCH_BASE = 1 << 30;
/** After a failed attempt, how long to wait for the coordinator to see a lost member's link close. */
const LOSS_SETTLE_MS = 5_000;
/** Attempts of one phase before the round gives up (each one needs a member lost to be retried). */
const MAX_ATTEMPTS = 8;
/** Frame tags must differ between every transfer of this process; a counter does it. */
let nextFrameStep = 1;

/**
 * Finds the peers to continue with: the members still alive plus peers that joined since (up to
 * peers.max), waiting — with a timeout and a message saying how to join — while fewer than
 * peers.min are there. Supplied by DistillationRounds (it owns the rendezvous).
 */
export type MemberSource = (why: string, current: readonly PeerHandle[]) => Promise<PeerHandle[]>;

/**
 * The phases of one round, run by the coordinator on the round's members: soft targets (shards of
 * the transfer set handed out to the members), training a student data-parallel on all members,
 * and measuring a model on one member. Rounds are elastic: a member lost while computing soft
 * targets has its shard handed to another member; a member lost while a student trains ends that
 * attempt, and the survivors (with any peer that joined) continue from the newest committed step
 * one of them holds, as the cluster's training epochs do. Any other failure — a member reporting
 * an error, silence past the deadline, a cancel — fails the phase with the member and the reason.
 */
export class DistillationRound {
  private readonly guards = new Set<PhaseGuard>();
  private cancelReason: string | undefined;
  private current: PeerHandle[];
  private readonly everyMember = new Set<PeerHandle>();

  constructor(
    readonly round: number,
    readonly spec: RoundSpec,
    members: readonly PeerHandle[],
    private readonly registry: PeerRegistry,
    private readonly cacheDir: string,
    private readonly log: Logger,
    private readonly onProgress: (progress: RoundProgress) => void,
    private readonly findMembers: MemberSource,
  ) {
    this.current = [...members];
    for (const peer of members) this.everyMember.add(peer);
  }

  /** The members the round runs on now. */
  get members(): readonly PeerHandle[] {
    return this.current;
  }

  /** Every peer that took part at some point (the report lists them). */
  get allMembers(): readonly PeerHandle[] {
    return [...this.everyMember];
  }

  cancel(reason: string): void {
    this.cancelReason ??= reason;
    for (const guard of this.guards) guard.cancel(reason);
    for (const peer of this.everyMember) void peer.send({ type: 'distill-cancel', round: this.round, reason: reason.slice(0, 1_900) });
  }

  /** The teacher's top-k soft targets for the first `count` training samples; reused from the cache when the same teacher, k and T were done before. */
  async softTargets(teacher: ModelFiles, count: number): Promise<SoftTargets> {
    const { topK: k, temperature } = this.spec;
    const hash = createHash('sha256');
    for (const file of teacher.files) hash.update(file.name).update(file.data);
    const file = path.join(this.cacheDir, `${hash.digest('hex').slice(0, 16)}-k${k}-T${temperature}-n${count}.bin`);
    const cached = await readFile(file).catch(() => undefined);
    if (cached) {
      try {
        const table = decodeTable(cached, file);
        if (table.count === count && table.k === k && table.temperature === temperature) {
          this.log.info({ file }, 'soft targets of this teacher (same k and T) reused from the cache');
          return { table, bytes: cached, file, cached: true, seconds: 0 };
        }
      } catch (error) {
        this.log.warn({ file }, `cached soft targets unusable (${(error as Error).message}); computing them again`);
      }
    }
    const began = performance.now();
    // One shard per member at the start; a lost member's shard goes back in the queue for another.
    const queue = this.current.map((_, rank) => sliceOfBatch(count, rank, this.current.length));
    const shards = queue.length;
    const parts: { start: number; table: SoftTargetTable }[] = [];
    const progress = (): void => {
      const n = this.current.length;
      this.onProgress({ stage: 'soft-targets', detail: `${n} peer${n === 1 ? '' : 's'} compute the teacher's top-${k} logits for ${count} samples (${parts.length} of ${shards} shards done)` });
    };
    progress();
    const work = async (peer: PeerHandle): Promise<void> => {
      for (let shard = queue.shift(); shard; shard = queue.shift()) {
        try {
          parts.push(await this.shardOfTargets(peer, teacher, shard));
          progress();
        } catch (error) {
          queue.unshift(shard);
          if (!(await this.wasLost(peer))) throw error;
          this.log.warn({ round: this.round, peer: peer.label, shard }, `${peer.label} left while computing soft targets; its shard goes to another peer (${(error as Error).message})`);
          this.current = this.current.filter((member) => member !== peer);
          progress();
          return;
        }
      }
    };
    for (let attempt = 1; queue.length > 0; attempt++) {
      if (attempt > 1) {
        if (attempt > MAX_ATTEMPTS) throw new Error(`soft targets still incomplete after ${MAX_ATTEMPTS} rounds of lost peers`);
        this.current = await this.membersAfterLoss('to finish the soft targets');
      }
      await Promise.all(this.current.map(work));
    }
    const table = mergeShards(parts, count, k, temperature);
    const bytes = encodeTable(table);
    await mkdir(this.cacheDir, { recursive: true });
    await writeFileAtomic(file, bytes);
    const seconds = (performance.now() - began) / 1000;
    this.log.info({ file, bytes: bytes.byteLength, bytesPerSample: bytesPerSample(k), seconds: seconds.toFixed(1) }, 'soft targets computed and stored');
    return { table, bytes, file, cached: false, seconds };
  }

  /** One shard on one peer, guarded by that peer alone: another member's trouble does not end it. */
  private async shardOfTargets(peer: PeerHandle, teacher: ModelFiles, shard: { start: number; end: number }): Promise<{ start: number; table: SoftTargetTable }> {
    const { topK: k, temperature, targetsBatchSize } = this.spec;
    const frameStep = nextFrameStep++;
    return this.phase(`computing soft targets ${shard.start}..${shard.end}`, this.spec.phaseTimeoutSeconds * 1000, [peer], new Set([frameStep]), async (guard) => {
      await guard.run(peer.link.sendControl({ type: 'distill-targets-request', round: this.round, frameStep, start: shard.start, end: shard.end, k, temperature, batchSize: targetsBatchSize, teacher: describeFiles(teacher.files) }));
      await guard.run(sendFiles(peer.link, { epoch: DISTILL_FRAME_EPOCH, step: frameStep }, teacher.files, TRANSFER_TIMEOUT_MS));
      const reply = await guard.next(peer, 'distill-targets', (m) => m.round === this.round && m.frameStep === frameStep);
      if (reply.start !== shard.start || reply.count !== shard.end - shard.start) {
        throw new Error(`${peer.label} sent soft targets for samples ${reply.start}+${reply.count}, asked for ${shard.start}..${shard.end}`);
      }
      const [received] = await guard.run(receiveFiles(peer.link, { epoch: DISTILL_FRAME_EPOCH, step: frameStep }, [reply.table], TRANSFER_TIMEOUT_MS));
      return { start: shard.start, table: decodeTable(received!.data, `soft targets from ${peer.label}`) };
    });
  }

  /**
   * Trains one student on the members (a ring); rank 0 evaluates it and sends it back. When a
   * member is lost, the attempt ends and the next one starts on the survivors from their newest
   * committed step (nothing is redone but the step in flight).
   */
  async trainStudent(phase: TrainingPhase, training: StudentTraining, student: ModelFiles | undefined, targets: Uint8Array | undefined): Promise<TrainedStudent> {
    const label = phase === 'distilled' ? 'the distilled student' : 'the student alone (hard labels)';
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) this.current = await this.membersAfterLoss(`to continue training ${label}`);
      const members = this.current;
      const frameStep = nextFrameStep++;
      try {
        return await this.trainingAttempt(phase, label, training, student, targets, members, frameStep);
      } catch (error) {
        const lost = await this.lostAmong(members);
        if (this.cancelReason || lost.length === 0 || attempt >= MAX_ATTEMPTS) throw error;
        const survivors = members.filter((peer) => !lost.includes(peer));
        const reason = `${lost.map((peer) => peer.nodeId).join(', ')} left while training ${label}`;
        for (const peer of survivors) void peer.send({ type: 'distill-abort', round: this.round, phase, frameStep, reason });
        this.log.warn({ round: this.round, phase, lost: lost.map((peer) => peer.label), survivors: survivors.map((peer) => peer.nodeId), cause: (error as Error).message }, `${reason}; continuing from the newest committed step`);
        this.onProgress({ stage: phase, detail: `${reason}; continuing with the survivors from their last committed step` });
      }
    }
  }

  private async trainingAttempt(
    phase: TrainingPhase,
    label: string,
    training: StudentTraining,
    student: ModelFiles | undefined,
    targets: Uint8Array | undefined,
    members: readonly PeerHandle[],
    frameStep: number,
  ): Promise<TrainedStudent> {
    const n = members.length;
    const tag = { epoch: DISTILL_FRAME_EPOCH, step: frameStep };
    const targetFile: TransferFile | undefined = targets ? { name: 'soft-targets', data: targets } : undefined;
    const studentFiles = student?.files ?? [];
    this.onProgress({ stage: phase, detail: `training ${label} on ${n} peer${n === 1 ? '' : 's'}`, step: 0, totalSteps: training.steps });
    const silenceMs = this.spec.stepTimeoutSeconds * 2_000 + 60_000;
    return this.phase(`training ${label}`, silenceMs, members, new Set([frameStep]), async (guard) => {
      const stopWatching = members[0]!.link.onControl('distill-progress', (m) => {
        if (m.round === this.round && m.phase === phase) this.onProgress({ stage: phase, detail: `training ${label}: step ${m.step}/${m.totalSteps}`, step: m.step, totalSteps: m.totalSteps, loss: m.loss });
      });
      try {
        const readies: ClusterMessageOf<'distill-ready'>[] = await Promise.all(
          members.map(async (peer, rank) => {
            await guard.run(
              peer.link.sendControl({
                type: 'distill-train-request',
                round: this.round,
                phase,
                frameStep,
                rank,
                worldSize: n,
                ringEpoch: RING_EPOCH_BASE + frameStep,
                training,
                targets: targetFile ? describeFiles([targetFile])[0]! : null,
                student: describeFiles(studentFiles),
              }),
            );
            await guard.run(sendFiles(peer.link, tag, [...(targetFile ? [targetFile] : []), ...studentFiles], TRANSFER_TIMEOUT_MS));
            return guard.next(peer, 'distill-ready', (m) => m.round === this.round && m.phase === phase && m.frameStep === frameStep);
          }),
        );
        // The newest state any member holds; the others take it over the ring (no checkpoint on disk).
        const choice = chooseStateSource(readies.map((ready) => ready.committedStep), undefined);
        if (choice.startStep > 0) {
          this.log.info({ round: this.round, phase, root: members[choice.root]!.nodeId, startStep: choice.startStep }, `${label} continues from step ${choice.startStep}`);
          this.onProgress({ stage: phase, detail: `training ${label} on ${n} peer${n === 1 ? '' : 's'} from step ${choice.startStep} (the state of ${members[choice.root]!.nodeId})`, step: choice.startStep, totalSteps: training.steps });
        }
        await Promise.all(
          members.map((peer, rank) => {
            const nextRank = (rank + 1) % n;
            const port = readies[nextRank]!.ringPort;
            return peer.send({ type: 'distill-go', round: this.round, phase, frameStep, stateRoot: choice.root, startStep: choice.startStep, next: n > 1 && port !== null ? { host: members[nextRank]!.address, port } : null });
          }),
        );
        const trained = await Promise.all(members.map((peer) => guard.next(peer, 'distill-trained', (m) => m.round === this.round && m.phase === phase && m.frameStep === frameStep)));
        const report = trained[0]!;
        if (report.accuracy === null || report.testLoss === null) throw new Error(`rank 0 (${members[0]!.label}) sent no evaluation of ${label}`);
        const files = await guard.run(receiveFiles(members[0]!.link, tag, report.model, TRANSFER_TIMEOUT_MS));
        return { files, accuracy: report.accuracy, testLoss: report.testLoss, trainSeconds: Math.max(...trained.map((t) => t.trainSeconds)) };
      } finally {
        stopWatching();
      }
    });
  }

  /** Test accuracy and inference speed of one model, measured on the first member (the same machine for every model of the round while it stays). */
  async measure(name: string, model: ModelFiles): Promise<Measured> {
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) this.current = await this.membersAfterLoss(`to measure the ${name}`);
      const peer = this.current[0]!;
      const frameStep = nextFrameStep++;
      try {
        return await this.measureOn(peer, name, model, frameStep);
      } catch (error) {
        if (this.cancelReason || attempt >= MAX_ATTEMPTS || !(await this.wasLost(peer))) throw error;
        this.log.warn({ round: this.round, peer: peer.label }, `${peer.label} left while measuring the ${name}; measuring on another peer`);
      }
    }
  }

  private measureOn(peer: PeerHandle, name: string, model: ModelFiles, frameStep: number): Promise<Measured> {
    this.onProgress({ stage: 'measuring', detail: `measuring the ${name} on ${peer.nodeId}` });
    return this.phase(`measuring the ${name}`, this.spec.phaseTimeoutSeconds * 1000, [peer], new Set([frameStep]), async (guard) => {
      const { spec } = this;
      await guard.run(
        peer.link.sendControl({
          type: 'distill-measure-request',
          round: this.round,
          frameStep,
          name,
          model: describeFiles(model.files),
          evalBatchSize: spec.evalBatchSize,
          inferenceBatch: spec.inferenceBatch,
          inferenceSamples: spec.inferenceSamples,
        }),
      );
      await guard.run(sendFiles(peer.link, { epoch: DISTILL_FRAME_EPOCH, step: frameStep }, model.files, TRANSFER_TIMEOUT_MS));
      const reply = await guard.next(peer, 'distill-measured', (m) => m.round === this.round && m.name === name);
      return { accuracy: reply.accuracy, testLoss: reply.testLoss, msPerSample: reply.msPerSample, inferenceBatch: reply.inferenceBatch, backend: reply.backend, measuredBy: peer.nodeId };
    });
  }

  /** Members of `members` that are gone, waiting briefly: a survivor may report its broken ring before the coordinator sees the lost peer's link close. */
  private async lostAmong(members: readonly PeerHandle[]): Promise<PeerHandle[]> {
    const deadline = Date.now() + LOSS_SETTLE_MS;
    for (;;) {
      const lost = members.filter((peer) => !peer.alive);
      if (lost.length > 0 || Date.now() >= deadline || this.cancelReason) return lost;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private async wasLost(peer: PeerHandle): Promise<boolean> {
    return (await this.lostAmong([peer])).length > 0;
  }

  private async membersAfterLoss(why: string): Promise<PeerHandle[]> {
    if (this.cancelReason) throw new Error(`cancelled: ${this.cancelReason}`);
    const members = await this.findMembers(why, this.current.filter((peer) => peer.alive));
    for (const peer of members) this.everyMember.add(peer);
    return members;
  }

  private async phase<T>(what: string, silenceMs: number, members: readonly PeerHandle[], frameSteps: ReadonlySet<number>, work: (guard: PhaseGuard) => Promise<T>): Promise<T> {
    if (this.cancelReason) throw new Error(`cancelled: ${this.cancelReason}`);
    const guard = new PhaseGuard(members, this.registry, this.round, what, silenceMs, frameSteps);
    this.guards.add(guard);
    try {
      return await guard.run(work(guard));
    } finally {
      this.guards.delete(guard);
      guard.dispose();
    }
  }
}

function mergeShards(parts: { start: number; table: SoftTargetTable }[], count: number, k: number, temperature: number): SoftTargetTable {
  const numClasses = parts[0]!.table.numClasses;
  const merged: SoftTargetTable = { numClasses, k, temperature, count, classes: new Uint8Array(count * k), logits: new Float32Array(count * k), tailLogMass: new Float32Array(count) };
  let covered = 0;
  for (const { start, table } of parts) {
    if (table.numClasses !== numClasses || table.k !== k || table.temperature !== temperature) throw new Error('soft-target shards disagree on classes, k or temperature');
    merged.classes.set(table.classes, start * k);
    merged.logits.set(table.logits, start * k);
    merged.tailLogMass.set(table.tailLogMass, start);
    covered += table.count;
  }
  if (covered !== count) throw new Error(`soft-target shards cover ${covered} samples, expected ${count}`);
  return merged;
}
