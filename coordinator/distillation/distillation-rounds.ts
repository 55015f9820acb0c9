import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../shared/log/logger.js';
import { writeFileAtomic } from '../../shared/models/file-io.js';
import { isZooModel } from '../../shared/models/zoo.js';
import type { PeerHandle } from '../membership/peer-handle.js';
import type { PeerRegistry } from '../membership/peer-registry.js';
import type { TransferFile } from '../protocol/file-transfer.js';
import { RendezvousTimeoutError, waitForPeers } from '../rendezvous/wait-for-peers.js';
import type { StudentTraining } from './distillation-messages.js';
import { DistillationRound, type RoundProgress } from './distillation-round.js';
import { parameterCount, readModelFiles, sizeOnDisk, type ModelFiles } from './model-files.js';
import { gapClosed, type ModelFigures, type RoundReport } from './round-report.js';
import { parseRoundSpec, PREVIOUS_ROUND, studentSteps, type RoundSpec, type RoundSpecInput } from './round-spec.js';
import { bytesPerSample } from './soft-target-table.js';

/** What the rounds need from the coordinator that hosts them. */
export interface DistillationHost {
  registry: PeerRegistry;
  /** Rounds live in <runDir>/distill/round-NNN/, soft targets in <runDir>/distill/soft-targets/. */
  runDir: string;
  log: Logger;
  /** Called on every change, for the coordinator's state (and so the dashboard). */
  publish: (view: DistillationView) => void;
  /** Why a round cannot start now (e.g. a training job holds the peers), or undefined. */
  busyReason: () => string | undefined;
  /** How peers join, for "waiting for peers" messages. */
  howToJoin: () => string;
}

/** The distillation part of the coordinator's observable state. */
export interface DistillationView {
  running: { round: number; teacher: string; student: string; startedAt: string; progress: RoundProgress } | undefined;
  /** Finished rounds, oldest first (the last 20). */
  reports: RoundReport[];
  lastFailure: { round: number; message: string } | undefined;
}

interface RunningRound {
  round: DistillationRound | undefined;
  done: Promise<unknown>;
  cancelled?: string;
  /** Resolves when the round is cancelled (ends a wait for peers). */
  cancelSignal: Promise<void>;
  signalCancel: () => void;
}

const REPORTS_KEPT = 20;
const ROUND_DIR = /^round-(\d+)$/;

/**
 * Distillation rounds on the peers of a coordinator, one at a time. `start(spec)` validates, picks
 * the round number and returns at once with a promise of the report; `run(spec)` waits for it.
 * Rounds chain: teacher "previous" is the student of the newest round in this run folder.
 */
export class DistillationRounds {
  private current: RunningRound | undefined;
  private view: DistillationView = { running: undefined, reports: [], lastFailure: undefined };

  constructor(private readonly host: DistillationHost) {}

  get dir(): string {
    return path.join(this.host.runDir, 'distill');
  }

  snapshot(): DistillationView {
    return structuredClone(this.view);
  }

  /** True while a round runs (a training job must wait for it: the peers are busy). */
  get busy(): boolean {
    return this.current !== undefined;
  }

  /** Resolves when no round is running. */
  async idle(): Promise<void> {
    while (this.current) await this.current.done.catch(() => {});
  }

  /**
   * Starts a round. Throws at once (JobValidationError naming every bad field, or a plain Error)
   * when the spec is invalid, a round is already running, or the cluster is busy training.
   */
  start(input: RoundSpecInput): { round: Promise<number>; report: Promise<RoundReport> } {
    const spec = parseRoundSpec(input);
    if (this.current) throw new Error(`a distillation round is already running (round ${this.view.running?.round ?? '?'}); wait for it or cancel it`);
    const busy = this.host.busyReason();
    if (busy) throw new Error(`cannot start a distillation round now: ${busy}`);
    let announce!: (round: number) => void;
    const round = new Promise<number>((resolve) => (announce = resolve));
    let signalCancel!: () => void;
    const cancelSignal = new Promise<void>((resolve) => (signalCancel = resolve));
    const entry: RunningRound = { round: undefined, done: Promise.resolve(), cancelSignal, signalCancel };
    this.current = entry;
    const report = this.execute(spec, entry, announce);
    entry.done = report.finally(() => {
      if (this.current === entry) this.current = undefined;
    });
    entry.done.catch(() => {});
    return { round, report };
  }

  async run(input: RoundSpecInput): Promise<RoundReport> {
    return this.start(input).report;
  }

  /** Cancels the running round (its peers stop their task); false when none runs. */
  cancel(reason: string): boolean {
    const current = this.current;
    if (!current) return false;
    current.cancelled ??= reason;
    current.signalCancel();
    current.round?.cancel(reason);
    return true;
  }

  private async execute(spec: RoundSpec, entry: RunningRound, announce: (round: number) => void): Promise<RoundReport> {
    const { registry, log } = this.host;
    const number = await this.nextRoundNumber();
    announce(number);
    const startedAt = new Date().toISOString();
    const teacherLabel = spec.teacher === PREVIOUS_ROUND ? `${PREVIOUS_ROUND} round's student` : spec.teacher;
    const progress = (p: RoundProgress): void => {
      this.view = { ...this.view, running: { round: number, teacher: teacherLabel, student: spec.student, startedAt, progress: p } };
      this.host.publish(this.snapshot());
    };
    try {
      const teacher = await this.loadTeacher(spec.teacher);
      const student = isZooModel(spec.student) ? undefined : await readModelFiles(spec.student);
      progress({ stage: 'waiting-for-peers', detail: `waiting for ${spec.peers.min} peer${spec.peers.min === 1 ? '' : 's'}` });
      const members = await this.peersFor(spec, entry, `for distillation round ${number}`, spec.peers.graceSeconds * 1000, spec.peers.joinTimeoutSeconds, [], progress);
      const trainSamples = registry.trainSamples;
      if (trainSamples === undefined) throw new Error('no peer has reported its training set yet');
      const transferSamples = spec.transferSamples || trainSamples;
      if (transferSamples > trainSamples) throw new Error(`transferSamples ${transferSamples} is more than the ${trainSamples} training samples the peers hold`);
      const roundDir = path.join(this.dir, `round-${String(number).padStart(3, '0')}`);
      await mkdir(roundDir, { recursive: true });
      // After a loss: the survivors first (they hold the student's state), then peers that joined.
      const findMembers = (why: string, survivors: readonly PeerHandle[]): Promise<PeerHandle[]> => this.peersFor(spec, entry, `${why} (distillation round ${number})`, 0, spec.peers.waitSeconds, survivors, progress);
      const round = new DistillationRound(number, spec, members, registry, path.join(this.dir, 'soft-targets'), log, progress, findMembers);
      entry.round = round;
      if (entry.cancelled) round.cancel(entry.cancelled);
      log.info({ round: number, teacher: teacher.source, student: spec.student, peers: members.map((p) => p.nodeId) }, `distillation round ${number} starts`);

      const targets = await round.softTargets(teacher, transferSamples);
      const training: StudentTraining = {
        zooModel: student ? null : spec.student,
        seed: spec.seed,
        batchSize: spec.batchSize,
        steps: studentSteps(spec, transferSamples),
        samples: transferSamples,
        optimizer: spec.optimizer,
        learningRate: spec.learningRate,
        temperature: spec.temperature,
        alpha: spec.alpha,
        evalBatchSize: spec.evalBatchSize,
        stepTimeoutSeconds: spec.stepTimeoutSeconds,
      };
      const distilled = await round.trainStudent('distilled', training, student, targets.bytes);
      const studentDir = await saveModel(path.join(roundDir, 'student'), distilled.files);
      const alone = spec.baseline ? await round.trainStudent('alone', { ...training, alpha: 0 }, student, undefined) : undefined;
      const aloneDir = alone ? await saveModel(path.join(roundDir, 'student-alone'), alone.files) : undefined;

      const figures = async (role: ModelFigures['role'], model: ModelFiles, where: string, trainSeconds?: number): Promise<ModelFigures> => {
        const measured = await round.measure(role, model);
        return { role, path: where, parameters: parameterCount(model), bytesOnDisk: sizeOnDisk(model), ...measured, ...(trainSeconds === undefined ? {} : { trainSeconds }) };
      };
      const models: ModelFigures[] = [
        await figures('teacher', teacher, teacher.source),
        await figures('student', { source: studentDir, files: distilled.files }, studentDir, distilled.trainSeconds),
      ];
      if (alone && aloneDir) models.push(await figures('student-alone', { source: aloneDir, files: alone.files }, aloneDir, alone.trainSeconds));
      const [t, s, a] = [models[0]!.accuracy, models[1]!.accuracy, models[2]?.accuracy];
      const report: RoundReport = {
        round: number,
        startedAt,
        finishedAt: new Date().toISOString(),
        dir: roundDir,
        teacher: teacher.source,
        student: spec.student,
        notes: [teacher.strippedSoftmax && `teacher: ${teacher.strippedSoftmax}`, student?.strippedSoftmax && `student: ${student.strippedSoftmax}`].filter((n): n is string => Boolean(n)),
        settings: {
          topK: spec.topK,
          temperature: spec.temperature,
          alpha: spec.alpha,
          steps: training.steps,
          batchSize: spec.batchSize,
          transferSamples,
          optimizer: spec.optimizer,
          learningRate: spec.learningRate,
          seed: spec.seed,
          peers: round.allMembers.map((p) => p.nodeId),
        },
        softTargets: { file: targets.file, bytes: targets.bytes.byteLength, bytesPerSample: bytesPerSample(spec.topK), cached: targets.cached, seconds: targets.seconds },
        models,
        gapClosed: gapClosed(t, s, a),
      };
      await writeFile(path.join(roundDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
      log.info({ round: number, dir: roundDir, gapClosed: report.gapClosed }, `distillation round ${number} finished`);
      this.view = { ...this.view, running: undefined, reports: [...this.view.reports, report].slice(-REPORTS_KEPT) };
      this.host.publish(this.snapshot());
      return report;
    } catch (error) {
      const message = `distillation round ${number} failed: ${(error as Error).message}`;
      entry.round?.cancel(message);
      log.error(message);
      this.view = { ...this.view, running: undefined, lastFailure: { round: number, message } };
      this.host.publish(this.snapshot());
      throw new Error(message, { cause: error });
    }
  }

  /**
   * Peers to run on: waits (for `timeoutSeconds`, then fails saying who is missing and how to join) until
   * peers.min are prepared, for up to `graceMs` more for peers.max; `first` keep their place.
   */
  private async peersFor(spec: RoundSpec, entry: RunningRound, purpose: string, graceMs: number, timeoutSeconds: number, first: readonly PeerHandle[], progress: (p: RoundProgress) => void): Promise<PeerHandle[]> {
    const { registry } = this.host;
    const waited = await waitForPeers(registry, {
      min: spec.peers.min,
      max: spec.peers.max,
      graceMs,
      timeoutMs: timeoutSeconds * 1000,
      purpose,
      howToJoin: this.host.howToJoin(),
      cancelled: entry.cancelSignal,
      onChange: (detail) => progress({ stage: 'waiting-for-peers', detail }),
    }).catch((error: unknown) => {
      if (error instanceof RendezvousTimeoutError) throw new Error(error.message);
      throw error;
    });
    if (waited === 'cancelled' || entry.cancelled) throw new Error(`cancelled: ${entry.cancelled ?? 'stopped'}`);
    const kept = first.filter((peer) => peer.alive);
    const others = registry.prepared().filter((peer) => !kept.includes(peer));
    return [...kept, ...others].slice(0, spec.peers.max);
  }

  private async loadTeacher(teacher: string): Promise<ModelFiles> {
    if (isZooModel(teacher)) throw new Error(`teacher '${teacher}' is a zoo architecture, not a trained model: give a model.json, a checkpoint or run folder, or "${PREVIOUS_ROUND}"`);
    if (teacher !== PREVIOUS_ROUND) return readModelFiles(teacher);
    // The newest round that got as far as saving its student (a failed round may have left none).
    for (const number of (await this.roundNumbers()).reverse()) {
      const student = path.join(this.dir, `round-${String(number).padStart(3, '0')}`, 'student');
      if (await stat(path.join(student, 'model.json')).catch(() => undefined)) return readModelFiles(student);
    }
    throw new Error(`teacher "${PREVIOUS_ROUND}": no earlier round in ${this.dir} has a trained student to use as the teacher`);
  }

  private async roundNumbers(): Promise<number[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    return names
      .map((name) => ROUND_DIR.exec(name)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  private async nextRoundNumber(): Promise<number> {
    return ((await this.roundNumbers()).at(-1) ?? 0) + 1;
  }
}

async function saveModel(dir: string, files: TransferFile[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  // Weights first, model.json last: a reader never sees a topology without its weights.
  for (const file of [...files].sort((a, b) => Number(a.name === 'model.json') - Number(b.name === 'model.json'))) {
    await writeFileAtomic(path.join(dir, file.name), file.data);
  }
  return dir;
}
