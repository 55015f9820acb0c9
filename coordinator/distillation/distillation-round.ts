import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../shared/log/logger.js';
import { writeFileAtomic } from '../../shared/models/file-io.js';
import { sliceOfBatch } from '../job/training-plan.js';
import type { PeerHandle } from '../membership/peer-handle.js';
import type { PeerRegistry } from '../membership/peer-registry.js';
import { describeFiles, receiveFiles, sendFiles, type TransferFile } from '../protocol/file-transfer.js';
import { DISTILL_FRAME_EPOCH, type StudentTraining, type TrainingPhase } from './distillation-messages.js';
import type { ModelFiles } from './model-files.js';
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
/** Frame tags must differ between every transfer of this process; a counter does it. */
let nextFrameStep = 1;

/**
 * The phases of one round, run by the coordinator on the round's members: soft targets (each
 * member computes its contiguous shard), training a student data-parallel on all members, and
 * measuring a model on rank 0. Each phase fails as a whole — with the member and the reason —
 * when a member leaves, fails, or goes silent (PhaseGuard).
 */
export class DistillationRound {
  private readonly guards = new Set<PhaseGuard>();
  private cancelReason: string | undefined;

  constructor(
    readonly round: number,
    readonly spec: RoundSpec,
    readonly members: readonly PeerHandle[],
    private readonly registry: PeerRegistry,
    private readonly cacheDir: string,
    private readonly log: Logger,
    private readonly onProgress: (progress: RoundProgress) => void,
  ) {}

  cancel(reason: string): void {
    this.cancelReason ??= reason;
    for (const guard of this.guards) guard.cancel(reason);
    for (const peer of this.members) void peer.send({ type: 'distill-cancel', round: this.round, reason: reason.slice(0, 1_900) });
  }

  /** The teacher's top-k soft targets for the first `count` training samples; reused from the cache when the same teacher, k and T were done before. */
  async softTargets(teacher: ModelFiles, count: number): Promise<SoftTargets> {
    const { topK: k, temperature, targetsBatchSize } = this.spec;
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
    const n = this.members.length;
    this.onProgress({ stage: 'soft-targets', detail: `${n} peer${n === 1 ? '' : 's'} compute the teacher's top-${k} logits for ${count} samples` });
    const parts = await this.phase('computing soft targets', this.spec.phaseTimeoutSeconds * 1000, (guard) =>
      Promise.all(
        this.members.map(async (peer, rank) => {
          const shard = sliceOfBatch(count, rank, n);
          const frameStep = nextFrameStep++;
          await peer.link.sendControl({ type: 'distill-targets-request', round: this.round, frameStep, start: shard.start, end: shard.end, k, temperature, batchSize: targetsBatchSize, teacher: describeFiles(teacher.files) });
          await guard.run(sendFiles(peer.link, { epoch: DISTILL_FRAME_EPOCH, step: frameStep }, teacher.files, TRANSFER_TIMEOUT_MS));
          const reply = await guard.next(peer, 'distill-targets', (m) => m.round === this.round && m.frameStep === frameStep);
          if (reply.start !== shard.start || reply.count !== shard.end - shard.start) {
            throw new Error(`${peer.label} sent soft targets for samples ${reply.start}+${reply.count}, asked for ${shard.start}..${shard.end}`);
          }
          const [received] = await guard.run(receiveFiles(peer.link, { epoch: DISTILL_FRAME_EPOCH, step: frameStep }, [reply.table], TRANSFER_TIMEOUT_MS));
          return { start: shard.start, table: decodeTable(received!.data, `soft targets from ${peer.label}`) };
        }),
      ),
    );
    const table = mergeShards(parts, count, k, temperature);
    const bytes = encodeTable(table);
    await mkdir(this.cacheDir, { recursive: true });
    await writeFileAtomic(file, bytes);
    const seconds = (performance.now() - began) / 1000;
    this.log.info({ file, bytes: bytes.byteLength, bytesPerSample: bytesPerSample(k), seconds: seconds.toFixed(1) }, 'soft targets computed and stored');
    return { table, bytes, file, cached: false, seconds };
  }

  /** Trains one student on every member (a ring); rank 0 evaluates it and sends it back. */
  async trainStudent(phase: TrainingPhase, training: StudentTraining, student: ModelFiles | undefined, targets: Uint8Array | undefined): Promise<TrainedStudent> {
    const n = this.members.length;
    const frameStep = nextFrameStep++;
    const tag = { epoch: DISTILL_FRAME_EPOCH, step: frameStep };
    const targetFile: TransferFile | undefined = targets ? { name: 'soft-targets', data: targets } : undefined;
    const studentFiles = student?.files ?? [];
    const label = phase === 'distilled' ? 'the distilled student' : 'the student alone (hard labels)';
    this.onProgress({ stage: phase, detail: `training ${label} on ${n} peer${n === 1 ? '' : 's'}`, step: 0, totalSteps: training.steps });
    const silenceMs = this.spec.stepTimeoutSeconds * 2_000 + 60_000;
    return this.phase(`training ${label}`, silenceMs, async (guard) => {
      const stopWatching = this.members[0]!.link.onControl('distill-progress', (m) => {
        if (m.round === this.round && m.phase === phase) this.onProgress({ stage: phase, detail: `training ${label}: step ${m.step}/${m.totalSteps}`, step: m.step, totalSteps: m.totalSteps, loss: m.loss });
      });
      try {
        const readies = await Promise.all(
          this.members.map(async (peer, rank) => {
            await peer.link.sendControl({
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
            });
            await guard.run(sendFiles(peer.link, tag, [...(targetFile ? [targetFile] : []), ...studentFiles], TRANSFER_TIMEOUT_MS));
            return guard.next(peer, 'distill-ready', (m) => m.round === this.round && m.phase === phase);
          }),
        );
        await Promise.all(
          this.members.map((peer, rank) => {
            const nextRank = (rank + 1) % n;
            const port = readies[nextRank]!.ringPort;
            return peer.send({ type: 'distill-go', round: this.round, phase, next: n > 1 && port !== null ? { host: this.members[nextRank]!.address, port } : null });
          }),
        );
        const trained = await Promise.all(this.members.map((peer) => guard.next(peer, 'distill-trained', (m) => m.round === this.round && m.phase === phase)));
        const report = trained[0]!;
        if (report.accuracy === null || report.testLoss === null) throw new Error(`rank 0 (${this.members[0]!.label}) sent no evaluation of ${label}`);
        const files = await guard.run(receiveFiles(this.members[0]!.link, tag, report.model, TRANSFER_TIMEOUT_MS));
        return { files, accuracy: report.accuracy, testLoss: report.testLoss, trainSeconds: Math.max(...trained.map((t) => t.trainSeconds)) };
      } finally {
        stopWatching();
      }
    });
  }

  /** Test accuracy and inference speed of one model, measured on rank 0 (the same machine for every model of the round). */
  async measure(name: string, model: ModelFiles): Promise<Measured> {
    const peer = this.members[0]!;
    const frameStep = nextFrameStep++;
    this.onProgress({ stage: 'measuring', detail: `measuring the ${name} on ${peer.nodeId}` });
    return this.phase(`measuring the ${name}`, this.spec.phaseTimeoutSeconds * 1000, async (guard) => {
      const { spec } = this;
      await peer.link.sendControl({
        type: 'distill-measure-request',
        round: this.round,
        frameStep,
        name,
        model: describeFiles(model.files),
        evalBatchSize: spec.evalBatchSize,
        inferenceBatch: spec.inferenceBatch,
        inferenceSamples: spec.inferenceSamples,
      });
      await guard.run(sendFiles(peer.link, { epoch: DISTILL_FRAME_EPOCH, step: frameStep }, model.files, TRANSFER_TIMEOUT_MS));
      const reply = await guard.next(peer, 'distill-measured', (m) => m.round === this.round && m.name === name);
      return { accuracy: reply.accuracy, testLoss: reply.testLoss, msPerSample: reply.msPerSample, inferenceBatch: reply.inferenceBatch, backend: reply.backend, measuredBy: peer.nodeId };
    });
  }

  private async phase<T>(what: string, silenceMs: number, work: (guard: PhaseGuard) => Promise<T>): Promise<T> {
    if (this.cancelReason) throw new Error(`cancelled: ${this.cancelReason}`);
    const guard = new PhaseGuard(this.members, this.registry, this.round, what, silenceMs);
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
