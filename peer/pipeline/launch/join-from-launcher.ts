import { RingNode, type JoinedRing } from '../../allreduce/ring-setup.js';
import { readAssignment } from '../../launch/read-assignment.js';
import { PipelineError } from '../errors.js';
import { StageNode, type JoinedStage, type StageNodeOptions } from '../links/stage-node.js';
import { REPLICA_ENV, REPLICAS_ENV, STAGE_ENV, STAGES_ENV, type StageAssignment, type StageLine, type StagePlace } from './launch-protocol.js';

/** This process's place, as given by the launcher. */
export function placeFromEnv(env: NodeJS.ProcessEnv = process.env): StagePlace {
  const place = { stage: Number(env[STAGE_ENV]), stages: Number(env[STAGES_ENV]), replica: Number(env[REPLICA_ENV] ?? 0), replicas: Number(env[REPLICAS_ENV] ?? 1) };
  const ok =
    Number.isInteger(place.stages) && place.stages >= 1 && Number.isInteger(place.stage) && place.stage >= 0 && place.stage < place.stages &&
    Number.isInteger(place.replicas) && place.replicas >= 1 && Number.isInteger(place.replica) && place.replica >= 0 && place.replica < place.replicas;
  if (!ok) {
    throw new PipelineError('usage', `this program is started by a pipeline launcher: ${STAGE_ENV}/${STAGES_ENV} (and ${REPLICA_ENV}/${REPLICAS_ENV}) must be set, got ${JSON.stringify(place)}`);
  }
  return place;
}

export function tellLauncher(line: StageLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

export function reportToLauncher(kind: string, data: unknown): void {
  tellLauncher({ ringpipe: 'report', kind, data });
}

export interface LaunchedStage {
  place: StagePlace;
  pipeline: JoinedStage;
  /** The ring over the same stage of every replica (present with more than one replica). */
  replicaRing?: JoinedRing;
  /** After success: waits for the neighbours to finish too, then closes (see JoinedStage.close). */
  close(): Promise<void>;
  /** After a failure: closes at once. */
  abort(reason: string): Promise<void>;
}

/**
 * Listens for the previous stage (and, with replicas, the previous replica's same stage), tells the
 * launcher where, reads whom to dial from stdin and joins both. All within `timeoutMs`.
 */
export async function joinPipelineFromLauncher(options: Omit<StageNodeOptions, 'stage' | 'stages' | 'replica'>, timeoutMs = 30_000): Promise<LaunchedStage> {
  const place = placeFromEnv();
  const host = options.host ?? '127.0.0.1';
  const node = await StageNode.listen({ ...options, host, stage: place.stage, stages: place.stages, replica: place.replica });
  const ring =
    place.replicas > 1
      ? await RingNode.listen({ cluster: `${options.cluster}/stage-${place.stage}`, rank: place.replica, worldSize: place.replicas, host, epoch: options.epoch ?? 0 })
      : undefined;
  tellLauncher({
    ringpipe: 'listening',
    stage: place.stage,
    replica: place.replica,
    ...(node.address ? { pipeline: node.address } : {}),
    ...(ring?.address ? { ring: ring.address } : {}),
  });
  const assignment = await readAssignment<StageAssignment>(timeoutMs, 'stage');
  const [pipeline, replicaRing] = await Promise.all([node.join(assignment.next ? { next: assignment.next } : {}, timeoutMs), ring?.join(assignment.ringNext, { timeoutMs })]);
  return {
    place,
    pipeline,
    ...(replicaRing ? { replicaRing } : {}),
    close: async () => {
      await pipeline.close();
      await replicaRing?.close();
    },
    abort: async (reason) => {
      await pipeline.abort(reason);
      await replicaRing?.close();
    },
  };
}
