import type { LoadedCheckpoint } from '../checkpoint/checkpoint-store.js';
import { splitIntoStageParts } from '../checkpoint/pipeline-checkpoint.js';
import type { StageCheckpointCollector } from '../checkpoint/stage-checkpoint-collector.js';
import type { PipelinePlan } from '../job/pipeline-plan.js';
import { pipelineOf } from '../job/pipeline-section.js';
import type { PeerHandle } from '../membership/peer-handle.js';
import type { ClusterMessageOf, TopologyMember } from '../protocol/cluster-messages.js';
import { sendFiles } from '../protocol/file-transfer.js';
import { chooseStageStateSource } from './choose-state-source.js';
import { closeEpoch, EpochWatch, FINAL_CHECKPOINT_TIMEOUT_MS, READY_GRACE_MS, RESTORE_TIMEOUT_MS, type EpochBaseContext, type EpochOutcome, type EpochRunner } from './epoch-watch.js';
import { loadLatestCheckpoint } from './load-latest-checkpoint.js';
import { StageTimelines } from './stage-timelines.js';

export interface PipelineEpochContext extends EpochBaseContext {
  collector: StageCheckpointCollector;
  pipeline: PipelinePlan;
  timelines: StageTimelines;
}

/**
 * A checkpoint or stop is set for this many steps after the newest one the coordinator heard of:
 * the first stage finishes a step last, at most one step behind the last stage's report, so every
 * stage still has the agreed step ahead of it when the request arrives.
 */
const SYNC_MARGIN_STEPS = 2;

/**
 * One membership epoch of a pipeline job, from the coordinator's side: give each of the K members
 * a stage (survivors keep theirs), tell each stage where its next stage listens, pick where the
 * state comes from (every stage's memory when all hold the same step, else the newest checkpoint,
 * sent to each stage as its part, else fresh weights), then watch: the last stage's progress feeds
 * the loss curve, every stage's report the dashboard and the bubble. Any member leaving ends the
 * epoch; the coordinator waits for a replacement and re-forms the pipeline from the checkpoint.
 */
export class PipelineEpochController implements EpochRunner {
  private cancelRequested: string | undefined;
  private onCancel: ((reason: string) => void) | undefined;
  private sync: ((action: 'checkpoint' | 'stop', reason: string) => void) | undefined;
  private running = false;
  private stopAsked: string | undefined;
  /** Stage of each node in the previous epoch: survivors keep their stage (and their memory). */
  private previousStages = new Map<string, number>();

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
    const stages = this.assignStages(candidates, pipeline.stages);
    const memberSet = new Set(stages);
    const topology: TopologyMember[] = stages.map((peer, stage) => ({ nodeId: peer.nodeId, rank: stage, stage }));
    const watch = new EpochWatch(registry, memberSet, job.stepTimeoutSeconds * 2_000 + 60_000);
    this.running = true;
    this.stopAsked = undefined;
    lossLog.beginEpoch(epoch, 1); // only the last stage reports the loss
    this.ctx.collector.beginEpoch(pipeline.stages);
    this.ctx.timelines.beginEpoch(settings, pipeline.stages);
    state.update({ phase: 'forming-epoch', epoch, topology, detail: `epoch ${epoch}: a pipeline of ${pipeline.stages} stages` });
    log.info({ epoch, stages: stages.map((peer, stage) => `${stage}: ${peer.label}`), balance: pipeline.balance }, `forming epoch ${epoch}: a pipeline of ${pipeline.stages} stages`);
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
      await Promise.all(stages.map((peer, stage) => peer.send({ type: 'assign-stage', epoch, stage, stages: pipeline.stages, balance: pipeline.balance, members: topology })));
      const readyTimeoutMs = job.stepTimeoutSeconds * 1000 + READY_GRACE_MS;
      const first = await Promise.race([allReady.then(() => 'ready' as const), watch.delay(readyTimeoutMs).then(() => 'timeout' as const), watch.outcome]);
      if (first === 'timeout') {
        const laggards = stages.filter((peer) => !readies.has(peer));
        for (const peer of laggards) peer.link.close(`did not answer epoch ${epoch} within ${readyTimeoutMs} ms`);
        watch.fail(`${laggards.map((peer) => peer.label).join(', ')} did not get ready for epoch ${epoch} within ${Math.round(readyTimeoutMs / 1000)} s`);
      }
      if (typeof first === 'object' || watch.settled) return await closeEpoch(epoch, stages, watch.outcome, log);

      // 2. Where the state comes from, then start.
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
      log.info({ epoch, source, startStep }, `epoch ${epoch} starts at step ${startStep} (state from ${source === 'checkpoint' ? `checkpoint ${checkpoint!.dir}, one part per stage` : source})`);
      state.update({ phase: 'training', step: startStep, totalSteps: plan.totalSteps, detail: `epoch ${epoch}: ${pipeline.stages}-stage pipeline from step ${startStep}` });
      let newestStep = startStep;
      await Promise.all(
        stages.map((peer, stage) => {
          const next = stages[stage + 1];
          const port = next ? readies.get(next)!.ringPort : null;
          return peer.send({ type: 'start', epoch, next: next && port !== null ? { host: next.address, port } : null, stateRoot: stage, stateSource: source, startStep, totalSteps: plan.totalSteps });
        }),
      );
      if (checkpoint && parts) {
        const loaded = checkpoint;
        stages.forEach((peer, stage) => {
          const files = parts[stage]!;
          void (async () => {
            await peer.link.sendControl({ type: 'restore', epoch, step: loaded.step, files: files.map((f) => ({ name: f.name, bytes: f.data.byteLength })) });
            await sendFiles(peer.link, { epoch, step: loaded.step }, files, RESTORE_TIMEOUT_MS);
          })().catch((error: unknown) => watch.fail(`sending stage ${stage}'s part of checkpoint ${loaded.dir} to ${peer.label} failed: ${(error as Error).message}`));
        });
      }

      // 3. Training: reports, checkpoints, the end.
      const last = stages[stages.length - 1]!;
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
        newestStep = Math.max(newestStep, message.step);
        state.update({ step: message.step, samplesPerSecond: message.samplesPerSecond });
      });
      watch.fromMembers('stage-report', epoch, (peer, message) => {
        peer.step = message.step;
        newestStep = Math.max(newestStep, message.step);
        this.ctx.timelines.add(message);
      });
      watch.fromMembers('evaluating', epoch, (_peer, message) => state.update({ phase: 'finishing', detail: `evaluating through the pipeline: ${message.done}/${message.total}` }));
      watch.fromMembers('result', epoch, (peer, message) => {
        if (peer === last) result = message;
      });
      watch.fromMembers('epoch-ended', epoch, (peer, message) => {
        if (message.outcome === 'failed' || message.outcome === 'aborted') {
          watch.fail(`stage ${stages.indexOf(peer)} (${peer.label}) could not continue: ${message.reason}`);
          return;
        }
        ended.set(peer, message);
        void maybeDone();
      });
      // Checkpoints and stops happen after one agreed step on every stage.
      this.sync = (action, reason) => {
        const step = newestStep + SYNC_MARGIN_STEPS;
        log.info({ epoch, action, step, reason }, `every stage will ${action === 'stop' ? 'stop' : 'checkpoint'} after step ${step}`);
        for (const peer of stages) void peer.send({ type: 'stage-sync', epoch, step, action, reason: reason.slice(0, 1_900) });
      };
      if (this.stopAsked) this.sync('stop', this.stopAsked);
      if (job.checkpoint.everySeconds > 0) watch.every(job.checkpoint.everySeconds * 1000, () => this.requestCheckpoint(`every ${job.checkpoint.everySeconds} s`));
      return await closeEpoch(epoch, stages, watch.outcome, log);
    } finally {
      this.previousStages = new Map(stages.map((peer, stage) => [peer.nodeId, stage]));
      this.sync = undefined;
      this.stopAsked = undefined;
      this.running = false;
      this.onCancel = undefined;
      watch.close();
    }
  }

  /**
   * K members in stage order: a survivor keeps the stage it had (its memory is of that stage), the
   * others fill the free stages in arrival order.
   */
  private assignStages(candidates: PeerHandle[], count: number): PeerHandle[] {
    return orderStages(candidates.slice(0, count), this.previousStages);
  }
}

/** Members in stage order: each keeps its previous stage where it can, newcomers fill the rest in arrival order. */
export function orderStages<P extends { nodeId: string }>(members: readonly P[], previousStages: ReadonlyMap<string, number>): P[] {
  const count = members.length;
  const stages: (P | undefined)[] = new Array<P | undefined>(count).fill(undefined);
  const rest: P[] = [];
  for (const peer of members) {
    const previous = previousStages.get(peer.nodeId);
    if (previous !== undefined && previous < count && !stages[previous]) stages[previous] = peer;
    else rest.push(peer);
  }
  for (let stage = 0; stage < count; stage++) stages[stage] ??= rest.shift();
  return stages as P[];
}
