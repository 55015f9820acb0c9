/**
 * The few lines a pipeline launcher and its stage processes exchange before the links exist: JSON
 * objects, one per line, on the child's stdout (child → launcher, tagged `ringpipe`) and stdin
 * (launcher → child). Pipes rather than IPC, so it also works through `ip netns exec`.
 */
export const STAGE_ENV = 'RINGPIPE_PIPELINE_STAGE';
export const STAGES_ENV = 'RINGPIPE_PIPELINE_STAGES';
export const REPLICA_ENV = 'RINGPIPE_PIPELINE_REPLICA';
export const REPLICAS_ENV = 'RINGPIPE_PIPELINE_REPLICAS';

export interface Address {
  host: string;
  port: number;
}

/** Child → launcher. */
export type StageLine =
  /** Where this process accepts its previous stage (`pipeline`) and its previous replica (`ring`). */
  | { ringpipe: 'listening'; stage: number; replica: number; pipeline?: Address; ring?: Address }
  | { ringpipe: 'report'; kind: string; data: unknown }
  | { ringpipe: 'failed'; message: string };

/** Launcher → child: whom to dial. */
export interface StageAssignment {
  /** The next stage of the same replica (absent on the last stage). */
  next?: Address;
  /** The same stage of the next replica, for the gradient all-reduce ring (absent with one replica). */
  ringNext?: Address;
}

export interface StagePlace {
  stage: number;
  stages: number;
  replica: number;
  replicas: number;
}
