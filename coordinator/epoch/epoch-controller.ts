import type { CheckpointReceiver } from '../checkpoint/checkpoint-receiver.js';
import type { LoadedCheckpoint } from '../checkpoint/checkpoint-store.js';
import type { PeerHandle } from '../membership/peer-handle.js';
import type { ClusterMessageOf, TopologyMember } from '../protocol/cluster-messages.js';
import { sendFiles } from '../protocol/file-transfer.js';
import { chooseStateSource } from './choose-state-source.js';
import { closeEpoch, EpochWatch, FINAL_CHECKPOINT_TIMEOUT_MS, READY_GRACE_MS, RESTORE_TIMEOUT_MS, type EpochBaseContext, type EpochOutcome, type EpochRunner } from './epoch-watch.js';
import { loadLatestCheckpoint } from './load-latest-checkpoint.js';

export type { EpochOutcome } from './epoch-watch.js';

export interface EpochContext extends EpochBaseContext {
  receiver: CheckpointReceiver;
}

const RESCALE_SETTLE_MS = 1_000;

/**
 * Runs one membership epoch from the coordinator's side: assign ranks, collect ring addresses,
 * pick where the state comes from, start, then watch. Any member leaving or failing ends the epoch
 * (the others are told to abort); a peer that arrives while the ring is below `max` makes the
 * coordinator ask for an agreed stop, so it joins at the next epoch. Every wait has a deadline.
 */
export class EpochController implements EpochRunner {
  private cancelRequested: string | undefined;
  private onCancel: ((reason: string) => void) | undefined;
  private checkpointWanted: ((reason: string) => void) | undefined;
  private running = false;
  private stopAsked: string | undefined;
  private sendStop: ((reason: string) => void) | undefined;

  constructor(private readonly ctx: EpochContext) {}

  /**
   * Asks the running epoch to stop after a step all members agree on (pause); an epoch still being
   * formed is asked as soon as it starts. False when no epoch runs.
   */
  requestStop(reason: string): boolean {
    if (!this.running) return false;
    this.stopAsked ??= reason;
    this.sendStop?.(reason);
    return true;
  }

  /** Ends the running epoch (Ctrl+C); the outcome is 'cancelled'. */
  cancel(reason: string): void {
    this.cancelRequested ??= reason;
    this.onCancel?.(reason);
  }

  /** Asks rank 0 of the running epoch for a checkpoint now (on demand). False when no epoch runs. */
  requestCheckpoint(reason: string): boolean {
    if (!this.checkpointWanted) return false;
    this.checkpointWanted(reason);
    return true;
  }

  async run(epoch: number, members: PeerHandle[]): Promise<EpochOutcome> {
    const { registry, state, job, plan, log, lossLog } = this.ctx;
    const n = members.length;
    const memberSet = new Set(members);
    const rankOf = new Map(members.map((peer, rank) => [peer, rank]));
    const topology: TopologyMember[] = members.map((peer, rank) => ({ nodeId: peer.nodeId, rank, stage: null }));
    // Watchdog: members send progress every step; silence this long means something is stuck.
    const watch = new EpochWatch(registry, memberSet, job.stepTimeoutSeconds * 2_000 + 60_000);
    const { outcome } = watch;
    const finish = (result: EpochOutcome): void => watch.finish(result);
    const fail = (reason: string): void => watch.fail(reason);
    const listen: EpochWatch['listen'] = (event, handler) => watch.listen(event, handler);
    const heard = (): void => watch.heard();
    this.running = true;
    this.stopAsked = undefined;

    lossLog.beginEpoch(epoch, n);
    state.update({ phase: 'forming-epoch', epoch, topology, detail: `epoch ${epoch}: ${n} peer${n === 1 ? '' : 's'}` });
    log.info({ epoch, members: members.map((peer) => peer.label) }, `forming epoch ${epoch} with ${n} peer${n === 1 ? '' : 's'}`);

    this.onCancel = (reason) => finish({ kind: 'cancelled', reason });
    if (this.cancelRequested) finish({ kind: 'cancelled', reason: this.cancelRequested });


    try {
      // 1. Ranks and ring addresses.
      const readies = new Map<PeerHandle, ClusterMessageOf<'ready'>>();
      const allReady = new Promise<void>((resolve) => {
        listen('ready', (peer, message) => {
          if (!memberSet.has(peer) || message.epoch !== epoch) return;
          heard();
          readies.set(peer, message);
          if (readies.size === n) resolve();
        });
      });
      await Promise.all(members.map((peer, rank) => peer.send({ type: 'assign', epoch, rank, worldSize: n, members: topology })));
      const readyTimeoutMs = job.stepTimeoutSeconds * 1000 + READY_GRACE_MS;
      const readyTimer = watch.delay(readyTimeoutMs).then(() => 'timeout' as const);
      const first = await Promise.race([allReady.then(() => 'ready' as const), readyTimer, outcome]);
      if (first === 'timeout') {
        const laggards = members.filter((peer) => !readies.has(peer));
        for (const peer of laggards) peer.link.close(`did not answer epoch ${epoch} within ${readyTimeoutMs} ms`);
        fail(`${laggards.map((peer) => peer.label).join(', ')} did not get ready for epoch ${epoch} within ${Math.round(readyTimeoutMs / 1000)} s`);
      }
      if (typeof first === 'object' || watch.settled) return await closeEpoch(epoch, members, outcome, log);

      // 2. Where the state comes from, then start.
      const choice = chooseStateSource(
        members.map((peer) => readies.get(peer)!.committedStep),
        this.ctx.store.latest?.step,
      );
      let checkpoint: LoadedCheckpoint | undefined;
      if (choice.source === 'checkpoint') {
        checkpoint = await loadLatestCheckpoint(this.ctx.store, log);
        if (!checkpoint) {
          fail('the newest checkpoint can no longer be read');
          return await closeEpoch(epoch, members, outcome, log);
        }
        choice.startStep = checkpoint.step;
      }
      lossLog.startsAfter(choice.startStep);
      log.info({ epoch, source: choice.source, root: choice.root, startStep: choice.startStep }, `epoch ${epoch} starts at step ${choice.startStep} (state from ${choice.source})`);
      state.update({ phase: 'training', step: choice.startStep, totalSteps: plan.totalSteps, detail: `epoch ${epoch}: ${n} peers from step ${choice.startStep}` });
      await Promise.all(
        members.map((peer, rank) => {
          const next = members[(rank + 1) % n]!;
          const port = readies.get(next)!.ringPort;
          return peer.send({
            type: 'start',
            epoch,
            next: n > 1 && port !== null ? { host: next.address, port } : null,
            stateRoot: choice.root,
            stateSource: choice.source,
            startStep: choice.startStep,
            totalSteps: plan.totalSteps,
            ...(checkpoint ? { dataPosition: checkpoint.state.dataPosition } : {}),
          });
        }),
      );
      if (checkpoint) {
        const root = members[choice.root]!;
        void (async () => {
          await root.link.sendControl({ type: 'restore', epoch, step: checkpoint.step, files: checkpoint.files.map((f) => ({ name: f.name, bytes: f.data.byteLength })) });
          await sendFiles(root.link, { epoch, step: checkpoint.step }, checkpoint.files, RESTORE_TIMEOUT_MS);
        })().catch((error: unknown) => fail(`sending checkpoint ${checkpoint.dir} to ${root.label} failed: ${(error as Error).message}`));
      }

      // 3. Training: progress, checkpoints, the end.
      const ended = new Map<PeerHandle, ClusterMessageOf<'epoch-ended'>>();
      let result: ClusterMessageOf<'result'> | undefined;
      const maybeDone = async (): Promise<void> => {
        if (ended.size < n) return;
        const outcomes = [...ended.values()].map((e) => e.outcome);
        if (outcomes.every((o) => o === 'finished')) {
          if (!result) {
            fail('every member finished but rank 0 sent no result');
            return;
          }
          state.update({ phase: 'finishing', detail: 'writing the final checkpoint' });
          await Promise.race([this.ctx.receiver.idle(), watch.delay(FINAL_CHECKPOINT_TIMEOUT_MS)]);
          const { type: _type, ...rest } = result;
          finish({ kind: 'finished', result: rest });
        } else if (outcomes.every((o) => o === 'finished' || o === 'stopped')) {
          finish({ kind: 'stopped' });
        }
      };
      listen('progress', (peer, message) => {
        if (!memberSet.has(peer) || message.epoch !== epoch) return;
        heard();
        watch.progressed = true;
        peer.step = message.step;
        if (rankOf.get(peer) === 0) state.update({ step: message.step, samplesPerSecond: message.samplesPerSecond });
      });
      listen('evaluating', (peer, message) => {
        if (!memberSet.has(peer) || message.epoch !== epoch) return;
        heard();
        state.update({ phase: 'finishing', detail: `evaluating on the test set: ${message.done}/${message.total}` });
      });
      listen('result', (peer, message) => {
        if (memberSet.has(peer) && message.epoch === epoch) {
          heard();
          result = message;
        }
      });
      listen('epoch-ended', (peer, message) => {
        if (!memberSet.has(peer) || message.epoch !== epoch) return;
        heard();
        if (message.outcome === 'failed' || message.outcome === 'aborted') {
          fail(`${peer.label} could not continue: ${message.reason}`);
          return;
        }
        ended.set(peer, message);
        void maybeDone();
      });
      let stopAsked = false;
      listen('prepared', (peer) => {
        if (memberSet.has(peer) || stopAsked || n >= job.peers.max) return;
        stopAsked = true;
        log.info({ peer: peer.label, epoch }, 'a peer is waiting to join: stopping this epoch at the next agreed step');
        watch.after(RESCALE_SETTLE_MS, () => members.forEach((m) => void m.send({ type: 'stop-request', epoch, reason: `${peer.nodeId} joins` })));
      });
      this.checkpointWanted = (reason) => void members[0]!.send({ type: 'checkpoint-request', epoch, reason });
      // Sent only now: every member has taken the assignment, so none can miss the request.
      this.sendStop = (reason) => members.forEach((m) => void m.send({ type: 'stop-request', epoch, reason }));
      if (this.stopAsked) this.sendStop(this.stopAsked);
      if (job.checkpoint.everySeconds > 0) {
        watch.every(job.checkpoint.everySeconds * 1000, () => this.requestCheckpoint(`every ${job.checkpoint.everySeconds} s`));
      }
      // A peer that arrived while the epoch was being formed is invited right away.
      const waiting = registry.prepared().find((peer) => !memberSet.has(peer));
      if (waiting) registry.emit('prepared', waiting);
      return await closeEpoch(epoch, members, outcome, log);
    } finally {
      this.checkpointWanted = undefined;
      this.sendStop = undefined;
      this.stopAsked = undefined;
      this.running = false;
      this.onCancel = undefined;
      watch.close();
    }
  }
}
