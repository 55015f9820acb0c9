import type { ClusterJob } from '../../../coordinator/job/cluster-job.js';
import { pipelineOf } from '../../../coordinator/job/pipeline-section.js';
import type { TrainingPlan } from '../../../coordinator/job/training-plan.js';
import type { ClusterMessageOf } from '../../../coordinator/protocol/cluster-messages.js';
import type { PeerReadinessReporter } from '../../../shared/health/index.js';
import type { Logger } from '../../../shared/log/logger.js';
import { secretSourceOf, type SecretSource } from '../../../shared/transport/index.js';
import { RingNode } from '../../allreduce/ring-setup.js';
import { StageNode } from '../../pipeline/links/stage-node.js';
import { sendQuietly, type CoordinatorLink } from '../coordinator-link.js';
import type { GlobalBatches } from '../global-batches.js';
import type { PreparedJob } from '../peer-resources.js';
import { PipelineStageRun } from './pipeline-stage-run.js';
import { StageHolder } from './stage-holder.js';
import { StagePartUploader } from './stage-part-uploader.js';

/** What the session has prepared for the job (the same objects a data-parallel epoch uses). */
export interface PreparedPipelineJob {
  runId: string;
  job: ClusterJob;
  plan: TrainingPlan;
  prepared: PreparedJob;
  batches: GlobalBatches;
}

export interface PipelineStagesOptions extends SecretSource {
  cluster: string;
  nodeId: string;
  /** Address the stage listener binds (the coordinator tells the previous stage the address it sees us at). */
  ringHost: string;
  log: Logger;
  readiness?: PeerReadinessReporter;
  /** The session's prepared job, once `welcome` was handled. */
  active(): PreparedPipelineJob | undefined;
}

/**
 * The peer's side of pipeline mode, beside the data-parallel session on the same coordinator link:
 * `assign-stage` builds (or keeps) this peer's stage and listens for the previous stage, `start`
 * runs the epoch, `restore` / `stage-sync` / `abort` reach the running epoch. The session's own
 * handlers ignore these epochs (its data-parallel epoch is never created in pipeline mode).
 */
export function attachPipelineStages(link: CoordinatorLink, options: PipelineStagesOptions): void {
  const { log } = options;
  let queue: Promise<void> = Promise.resolve();
  let current: PipelineStageRun | undefined;
  let holder: StageHolder | undefined;
  let uploader: StagePartUploader | undefined;
  const enqueue = (task: () => Promise<void>): void => {
    queue = queue.then(task).catch((error: unknown) => {
      log.error({ err: error }, 'pipeline stage error');
      link.close(`pipeline stage error: ${(error as Error).message}`.slice(0, 120));
    });
  };
  const endCurrent = async (reason: string): Promise<void> => {
    const run = current;
    if (!run) return;
    run.abort(reason);
    await run.ended();
    current = undefined;
  };

  link.onControl('assign-stage', (message) =>
    enqueue(async () => {
      await endCurrent(`superseded by epoch ${message.epoch}`);
      const active = options.active();
      if (!active) throw new Error(`assigned to stage ${message.stage} of epoch ${message.epoch} before the job was prepared`);
      const source = active.prepared.stages;
      if (!source) throw new Error(`assigned to stage ${message.stage} of epoch ${message.epoch}, but the job was prepared for data parallelism`);
      if (!holder?.matches(active.runId, message.balance, message.stage)) {
        holder?.dispose();
        holder = undefined;
        holder = await StageHolder.create(active.runId, message.balance, message.stage, source, active.job);
      }
      uploader ??= new StagePartUploader(link, log);
      const replica = message.replica ?? 0;
      const replicas = message.replicas ?? 1;
      const node = await StageNode.listen({
        stage: message.stage,
        stages: message.stages,
        replica,
        epoch: message.epoch,
        cluster: options.cluster,
        nodeId: options.nodeId,
        host: options.ringHost,
        port: 0,
        logger: log,
        ...secretSourceOf(options),
      });
      // With replicas: the ring of this stage's R replicas (peer/allreduce's ring, set up as a
      // data-parallel epoch sets up its own), named per stage so rings of different stages never mix.
      const replicaNode =
        replicas > 1
          ? await RingNode.listen({
              rank: replica,
              worldSize: replicas,
              epoch: message.epoch,
              cluster: `${options.cluster}/stage-${message.stage}`,
              nodeId: options.nodeId,
              host: options.ringHost,
              port: 0,
              logger: log,
              ...secretSourceOf(options),
            }).catch(async (error: unknown) => {
              await node.close();
              throw error;
            })
          : undefined;
      const { data } = active.prepared;
      current = new PipelineStageRun(message, node, replicaNode, {
        link,
        job: active.job,
        settings: pipelineOf(active.job),
        plan: active.plan,
        holder,
        batches: active.batches,
        test: data.test,
        numClasses: data.numClasses,
        outputKind: source.outputKind,
        uploader,
        log,
      });
      log.info({ epoch: message.epoch, stage: message.stage, stages: message.stages, replica, replicas, balance: message.balance }, 'assigned a pipeline stage');
      options.readiness?.assigned(message.epoch, message.stage, message.stages);
      const replicaPort = replicaNode?.address?.port;
      sendQuietly(link, { type: 'ready', epoch: message.epoch, ringPort: node.address?.port ?? null, committedStep: holder.committedStep, ...(replicaPort !== undefined ? { replicaPort } : {}) });
    }),
  );
  link.onControl('start', (message) =>
    enqueue(async () => {
      const run = current;
      if (!run || run.epoch !== message.epoch) return;
      options.readiness?.training(message.epoch);
      void run.start(message).then((outcome) => {
        log.info({ ...outcome }, 'pipeline epoch ended');
        options.readiness?.epochEnded(message.epoch, outcome.outcome);
        sendQuietly(link, { type: 'epoch-ended', ...outcome });
      });
    }),
  );
  link.onControl('restore', (message) => {
    if (current?.epoch === message.epoch) current.deliverRestore(message);
  });
  link.onControl('stage-sync', (message: ClusterMessageOf<'stage-sync'>) => {
    if (current?.epoch === message.epoch) current.sync(message);
  });
  link.onControl('abort', (message) => {
    if (current?.epoch === message.epoch) current.abort(message.reason);
  });
  link.onControl('shutdown', (message) => current?.abort(message.reason));
  link.once('close', (info) => {
    current?.abort(`coordinator link lost: ${info.reason}`);
    void queue.then(() => holder?.dispose());
  });
}
