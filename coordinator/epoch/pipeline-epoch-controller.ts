import type { LoadedCheckpoint } from '../checkpoint/checkpoint-store.js';
import { splitIntoStageParts } from '../checkpoint/pipeline-checkpoint.js';
import type { StageCheckpointCollector } from '../checkpoint/stage-checkpoint-collector.js';
import type { PipelinePlan } from '../job/pipeline-plan.js';
import { minReplicasOf, pipelineOf, replicasWanted } from '../job/pipeline-section.js';
import type { PeerHandle } from '../membership/peer-handle.js';
import type { ClusterMessageOf, TopologyMember } from '../protocol/cluster-messages.js';
import { sendFiles } from '../protocol/file-transfer.js';
import { AgreedStepPicker } from './agreed-step.js';
import { chooseStageStateSource } from './choose-state-source.js';
import { closeEpoch, EpochWatch, FINAL_CHECKPOINT_TIMEOUT_MS, READY_GRACE_MS, RESTORE_TIMEOUT_MS, type EpochBaseContext, type EpochOutcome, type EpochRunner } from './epoch-watch.js';
import { loadLatestCheckpoint } from './load-latest-checkpoint.js';
import { StageTimelines } from './stage-timelines.js';

export interface PipelineEpochContext extends EpochBaseContext {
  collector: StageCheckpointCollector;
  pipeline: PipelinePlan;
  timelines: StageTimelines;
}

/** Where a member sat in the previous epoch. */
export interface StageSlot {
  stage: number;
  replica: number;
}

/**
 * One membership epoch of a pipeline job, from the coordinator's side: give each member a stage of
 * a replica (survivors keep theirs), tell each stage where its next stage listens and, with R > 1
 * replicas, where the same stage of the next replica listens (the stage's replica ring), pick where
 * the state comes from (every stage's memory when all hold the same step, else the newest
 * checkpoint, sent to each stage as its part, else fresh weights), then watch: the last stages'
 * progress feeds the loss curve (each replica's loss weighted by its slice), replica 0's stage
 * reports the dashboard and the bubble. Any member leaving ends the epoch; the coordinator re-forms
 * the job from the checkpoint with as many whole replicas as the peers make (at least peers.min's
 * worth), and grows back when enough peers for another replica are waiting.
 */
export class PipelineEpochController implements EpochRunner {
  private cancelRequested: string | undefined;
  private onCancel: ((reason: string) => void) | undefined;
  private sync: ((action: 'checkpoint' | 'stop', reason: string) => void) | undefined;
  private running = false;
  private stopAsked: string | undefined;
  /** Replicas of the newest epoch (1 before the first). */
  replicas = 1;
  /** Slot of each node in the previous epoch: survivors keep their stage (and their memory). */
  private previousSlots = new Map<string, StageSlot>();

  constructor(private readonly ctx: PipelineEpochContext) {}

  requestStop(reason: string): boolean {
    if (!this.running) return false;
    this.stopAsked ??= reason;
    this.sync?.('stop', reason);
    return true;
  }

  cancel(reason: string): void {
    this.cancelRequested ??= reason;
    this.onCancel?.(reason);
  }

  requestCheckpoint(reason: string): boolean {
    if (!this.sync) return false;
    this.sync('checkpoint', reason);
    return true;
  }

  async run(epoch: number, candidates: PeerHandle[]): Promise<EpochOutcome> {
    const { registry, state, job, plan, log, lossLog, pipeline } = this.ctx;
    const settings = pipelineOf(job);
    const K = pipeline.stages;
    // As many whole replicas as the candidates make, up to the job's R (the coordinator only calls
    // with at least peers.min's worth).
    const wanted = replicasWanted(job, K);
    const replicas = Math.max(1, Math.min(wanted, Math.floor(candidates.length / K)));
    const grid = assignSlots(candidates, K, replicas, this.previousSlots);
    this.replicas = replicas;
    // Replica-major: member i is stage i % K of replica ⌊i / K⌋ (its rank in the topology).
    const stages = grid.flat();
    const slotOf = new Map(stages.map((peer, rank) => [peer, { stage: rank % K, replica: Math.floor(rank / K) }]));
    const where = (peer: PeerHandle): string => {
      const slot = slotOf.get(peer)!;
      return replicas > 1 ? `stage ${slot.stage} of replica ${slot.replica}` : `stage ${slot.stage}`;
    };
    const memberSet = new Set(stages);
    const topology: TopologyMember[] = stages.map((peer, rank) => ({ nodeId: peer.nodeId, rank, stage: rank % K, ...(replicas > 1 ? { replica: Math.floor(rank / K) } : {}) }));
    const watch = new EpochWatch(registry, memberSet, job.stepTimeoutSeconds * 2_000 + 60_000);
    this.running = true;
    this.stopAsked = undefined;
    lossLog.beginEpoch(epoch, replicas); // the last stage of each replica reports its slice's loss
    this.ctx.collector.beginEpoch(K);
    this.ctx.timelines.beginEpoch(settings, K);
    const shape = replicas > 1 ? `${replicas} replicas of a pipeline of ${K} stages` : `a pipeline of ${K} stages`;
    state.update({ phase: 'forming-epoch', epoch, topology, detail: `epoch ${epoch}: ${shape}` });
    log.info({ epoch, stages: stages.map((peer) => `${where(peer)}: ${peer.label}`), replicas, balance: pipeline.balance }, `forming epoch ${epoch}: ${shape}`);
    if (replicas < wanted && settings.replicas !== 'auto') {
      log.warn({ epoch, replicas, wanted, minReplicas: minReplicasOf(job, K) }, `training with ${replicas} of ${wanted} replicas until ${K} more peers are there for another`);
    }
    this.onCancel = (reason) => watch.finish({ kind: 'cancelled', reason });
    if (this.cancelRequested) watch.finish({ kind: 'cancelled', reason: this.cancelRequested });

    try {
      // 1. Stages, and where each listens for its previous stage.
      const readies = new Map<PeerHandle, ClusterMessageOf<'ready'>>();
      const allReady = new Promise<void>((resolve) =>
        watch.fromMembers('ready', epoch, (peer, message) => {
          readies.set(peer, message);
          if (readies.size === stages.length) resolve();
        }),
      );
      await Promise.all(
        stages.map((peer) => {
          const slot = slotOf.get(peer)!;
          return peer.send({ type: 'assign-stage', epoch, stage: slot.stage, stages: K, balance: pipeline.balance, members: topology, ...(replicas > 1 ? { replica: slot.replica, replicas } : {}) });
        }),
      );
      const readyTimeoutMs = job.stepTimeoutSeconds * 1000 + READY_GRACE_MS;
      const first = await Promise.race([allReady.then(() => 'ready' as const), watch.delay(readyTimeoutMs).then(() => 'timeout' as const), watch.outcome]);
      if (first === 'timeout') {
        const laggards = stages.filter((peer) => !readies.has(peer));
        for (const peer of laggards) peer.link.close(`did not answer epoch ${epoch} within ${readyTimeoutMs} ms`);
        watch.fail(`${laggards.map((peer) => peer.label).join(', ')} did not get ready for epoch ${epoch} within ${Math.round(readyTimeoutMs / 1000)} s`);
      }
      if (typeof first === 'object' || watch.settled) return await closeEpoch(epoch, stages, watch.outcome, log);

      // 2. Where the state comes from, then start. A checkpoint the last epoch asked for (a stop to
      // grow the replicas) may still be on its way to disk: wait for it, bounded.
      await Promise.race([this.ctx.collector.idle(), watch.delay(FINAL_CHECKPOINT_TIMEOUT_MS)]);
      const { source, startStep: chosenStep } = chooseStageStateSource(
        stages.map((peer) => readies.get(peer)!.committedStep),
        this.ctx.store.latest?.step,
      );
      let startStep = chosenStep;
      let checkpoint: LoadedCheckpoint | undefined;
      let parts: Awaited<ReturnType<typeof splitIntoStageParts>> | undefined;
      if (source === 'checkpoint') {
        checkpoint = await loadLatestCheckpoint(this.ctx.store, log);
        if (!checkpoint) {
          watch.fail('the newest checkpoint can no longer be read');
          return await closeEpoch(epoch, stages, watch.outcome, log);
        }
        try {
          parts = splitIntoStageParts(checkpoint.files, checkpoint.step, pipeline.balance);
        } catch (error) {
          watch.fail(`checkpoint ${checkpoint.dir}: ${(error as Error).message}`);
          return await closeEpoch(epoch, stages, watch.outcome, log);
        }
        startStep = checkpoint.step;
      }
      lossLog.startsAfter(startStep);
      log.info({ epoch, source, startStep, replicas }, `epoch ${epoch} starts at step ${startStep} (state from ${source === 'checkpoint' ? `checkpoint ${checkpoint!.dir}, one part per stage` : source})`);
      state.update({ phase: 'training', step: startStep, totalSteps: plan.totalSteps, detail: `epoch ${epoch}: ${replicas > 1 ? `${replicas} × ` : ''}${K}-stage pipeline from step ${startStep}` });
      // Checkpoints and stops happen after one step every stage still has ahead of it (agreed-step.ts).
      const steps = new AgreedStepPicker(startStep);
      await Promise.all(
        stages.map((peer) => {
          const { stage, replica } = slotOf.get(peer)!;
          const next = grid[replica]![stage + 1];
          const port = next ? readies.get(next)!.ringPort : null;
          const sameStageNext = grid[(replica + 1) % replicas]![stage]!;
          const replicaPort = readies.get(sameStageNext)!.replicaPort;
          return peer.send({
            type: 'start',
            epoch,
            next: next && port !== null ? { host: next.address, port } : null,
            stateRoot: stage,
            stateSource: source,
            startStep,
            totalSteps: plan.totalSteps,
            ...(replicas > 1 && replicaPort !== undefined ? { replicaNext: { host: sameStageNext.address, port: replicaPort } } : {}),
            ...(checkpoint ? { dataPosition: checkpoint.state.dataPosition } : {}),
          });
        }),
      );
      if (checkpoint && parts) {
        const loaded = checkpoint;
        stages.forEach((peer) => {
          const { stage } = slotOf.get(peer)!;
          const files = parts[stage]!;
          void (async () => {
            await peer.link.sendControl({ type: 'restore', epoch, step: loaded.step, files: files.map((f) => ({ name: f.name, bytes: f.data.byteLength })) });
            await sendFiles(peer.link, { epoch, step: loaded.step }, files, RESTORE_TIMEOUT_MS);
          })().catch((error: unknown) => watch.fail(`sending stage ${stage}'s part of checkpoint ${loaded.dir} to ${peer.label} failed: ${(error as Error).message}`));
        });
      }

      // 3. Training: reports, checkpoints, the end.
      // Replica 0's last stage speaks for the job (step, speed, result); every replica's loss counts.
      const last = grid[0]![K - 1]!;
      const replicaZero = new Set(grid[0]);
      const ended = new Map<PeerHandle, ClusterMessageOf<'epoch-ended'>>();
      let result: ClusterMessageOf<'result'> | undefined;
      const maybeDone = async (): Promise<void> => {
        if (ended.size < stages.length) return;
        const outcomes = [...ended.values()].map((e) => e.outcome);
        if (outcomes.every((o) => o === 'finished')) {
          if (!result) {
            watch.fail('every stage finished but the last stage sent no result');
            return;
          }
          state.update({ phase: 'finishing', detail: 'writing the final checkpoint' });
          await Promise.race([this.ctx.collector.idle(), watch.delay(FINAL_CHECKPOINT_TIMEOUT_MS)]);
          const { type: _type, ...rest } = result;
          watch.finish({ kind: 'finished', result: rest });
        } else if (outcomes.every((o) => o === 'finished' || o === 'stopped')) {
          watch.finish({ kind: 'stopped' });
        }
      };
      watch.fromMembers('progress', epoch, (peer, message) => {
        if (peer !== last) return;
        watch.progressed = true;
        steps.heard(message.step);
        state.update({ step: message.step, samplesPerSecond: message.samplesPerSecond });
      });
      watch.fromMembers('stage-report', epoch, (peer, message) => {
        peer.step = message.step;
        steps.heard(message.step);
        if (replicaZero.has(peer)) this.ctx.timelines.add(message);
      });
      watch.fromMembers('evaluating', epoch, (_peer, message) => state.update({ phase: 'finishing', detail: `evaluating through the pipeline: ${message.done}/${message.total}` }));
      watch.fromMembers('result', epoch, (peer, message) => {
        if (peer === last) result = message;
      });
      watch.fromMembers('epoch-ended', epoch, (peer, message) => {
        if (message.outcome === 'failed' || message.outcome === 'aborted') {
          watch.fail(`${where(peer)} (${peer.label}) could not continue: ${message.reason}`);
          return;
        }
        ended.set(peer, message);
        void maybeDone();
      });
      // Checkpoints and stops happen after one agreed step on every stage.
      this.sync = (action, reason) => {
        const step = steps.pick();
        log.info({ epoch, action, step, reason }, `every stage will ${action === 'stop' ? 'stop' : 'checkpoint'} after step ${step}`);
        for (const peer of stages) void peer.send({ type: 'stage-sync', epoch, step, action, reason: reason.slice(0, 1_900) });
      };
      if (this.stopAsked) this.sync('stop', this.stopAsked);
      if (job.checkpoint.everySeconds > 0) watch.every(job.checkpoint.everySeconds * 1000, () => this.requestCheckpoint(`every ${job.checkpoint.everySeconds} s`));
      // Fewer replicas than the job asks for: once peers for another whole replica are waiting,
      // checkpoint and stop at one agreed step; the next epoch takes them in from that checkpoint.
      let growing = false;
      const maybeGrow = (): void => {
        if (growing || replicas >= wanted || !this.sync) return;
        const waiting = registry.prepared().filter((peer) => !memberSet.has(peer));
        if (waiting.length < K) return;
        growing = true;
        log.info({ epoch, waiting: waiting.map((peer) => peer.label), replicas }, `${waiting.length} peers wait to join: checkpointing and stopping this epoch to train with more replicas`);
        this.sync('checkpoint', `${waiting.length} peers join as another replica`);
        this.sync('stop', `${waiting.length} peers join as another replica`);
      };
      watch.listen('prepared', () => maybeGrow());
      maybeGrow();
      return await closeEpoch(epoch, stages, watch.outcome, log);
    } finally {
      this.previousSlots = new Map([...slotOf.entries()].map(([peer, slot]) => [peer.nodeId, slot]));
      this.sync = undefined;
      this.stopAsked = undefined;
      this.running = false;
      this.onCancel = undefined;
      watch.close();
    }
  }

}

/**
 * `replicas` rows of `stages` members, from the candidates in arrival order: a survivor keeps its
 * slot where it can, else its stage in another replica (its memory is of that stage), and the rest
 * fill the free slots. Candidates left over sit this epoch out.
 */
export function assignSlots<P extends { nodeId: string }>(candidates: readonly P[], stages: number, replicas: number, previous: ReadonlyMap<string, StageSlot>): P[][] {
  if (candidates.length < stages * replicas) throw new Error(`${replicas} replicas of ${stages} stages need ${stages * replicas} peers, got ${candidates.length}`);
  const grid: (P | undefined)[][] = Array.from({ length: replicas }, () => new Array<P | undefined>(stages).fill(undefined));
  const placed = new Set<P>();
  const place = (peer: P, replica: number, stage: number): void => {
    grid[replica]![stage] = peer;
    placed.add(peer);
  };
  for (const peer of candidates) {
    const slot = previous.get(peer.nodeId);
    if (slot && slot.replica < replicas && slot.stage < stages && !grid[slot.replica]![slot.stage]) place(peer, slot.replica, slot.stage);
  }
  for (const peer of candidates) {
    const slot = previous.get(peer.nodeId);
    if (placed.has(peer) || !slot || slot.stage >= stages) continue;
    const replica = grid.findIndex((row) => !row[slot.stage]);
    if (replica >= 0) place(peer, replica, slot.stage);
  }
  const rest = candidates.filter((peer) => !placed.has(peer));
  for (const row of grid) for (let stage = 0; stage < stages; stage++) row[stage] ??= rest.shift();
  return grid as P[][];
}

/** Members in stage order (one replica): each keeps its previous stage where it can, newcomers fill the rest in arrival order. */
export function orderStages<P extends { nodeId: string }>(members: readonly P[], previousStages: ReadonlyMap<string, number>): P[] {
  const previous = new Map([...previousStages].map(([nodeId, stage]) => [nodeId, { stage, replica: 0 }]));
  return assignSlots(members, members.length, 1, previous)[0]!;
}
