import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { LaunchedChild, superviseLaunch } from '../../launch/launched-child.js';
import { REPLICA_ENV, REPLICAS_ENV, STAGE_ENV, STAGES_ENV, type Address, type StageAssignment, type StagePlace } from './launch-protocol.js';

export interface LaunchStagesOptions {
  stages: number;
  /** Pipeline replicas (pipeline + data parallel); default 1. */
  replicas?: number;
  /** Starts one stage process with `env` added; stdin and stdout must be pipes. */
  spawn(place: StagePlace, env: Record<string, string>): ChildProcess;
  /** The whole run, start to exit; on expiry every process is killed. */
  timeoutMs: number;
  onReport?(place: StagePlace, kind: string, data: unknown): void;
  /**
   * Wait for every process to exit and report failures in the outcomes instead of killing the others
   * at the first one (for tests of how stages react to a dead neighbour). The deadline still kills.
   */
  collectFailures?: boolean;
}

export interface StageOutcome {
  place: StagePlace;
  reports: { kind: string; data: unknown }[];
  stderrTail: string;
  /** Why the process failed (only with collectFailures). */
  failure?: string;
  /** Milliseconds from launch to this process's exit. */
  exitedAfterMs: number;
}

/**
 * Starts stages × replicas processes, tells each whom to dial once all listen, and waits for all to
 * exit 0. Any failure (non-zero exit, a `failed` line, the deadline) kills every process and rejects
 * with the failing one's stderr, so a broken run never leaves processes behind.
 */
export async function launchStages(options: LaunchStagesOptions): Promise<StageOutcome[]> {
  const { stages } = options;
  const replicas = options.replicas ?? 1;
  const secret = randomBytes(32).toString('hex');
  const started = performance.now();
  const places: StagePlace[] = [];
  for (let replica = 0; replica < replicas; replica++) for (let stage = 0; stage < stages; stage++) places.push({ stage, stages, replica, replicas });
  const processes = places.map(
    (place) =>
      new LaunchedChild<{ pipeline?: Address; ring?: Address }>(
        `stage ${place.stage}${replicas > 1 ? ` of replica ${place.replica}` : ''}`,
        options.spawn(place, {
          [STAGE_ENV]: String(place.stage),
          [STAGES_ENV]: String(stages),
          [REPLICA_ENV]: String(place.replica),
          [REPLICAS_ENV]: String(replicas),
          RINGPIPE_SECRET: secret,
        }),
        {
          started,
          listeningOf: (line) => ({ ...(line.pipeline ? { pipeline: line.pipeline as Address } : {}), ...(line.ring ? { ring: line.ring as Address } : {}) }),
          ...(options.onReport ? { onReport: (kind: string, data: unknown) => options.onReport!(place, kind, data) } : {}),
        },
      ),
  );
  const failures = await superviseLaunch(processes, { timeoutMs: options.timeoutMs, what: 'pipeline run', ...(options.collectFailures ? { collectFailures: true } : {}) }, (addresses) => {
    const at = (stage: number, replica: number) => addresses[replica * stages + stage]!;
    places.forEach((place, i) => {
      const assignment: StageAssignment = {};
      if (place.stage < stages - 1) assignment.next = at(place.stage + 1, place.replica).pipeline!;
      if (replicas > 1) assignment.ringNext = at(place.stage, (place.replica + 1) % replicas).ring!;
      processes[i]!.assign(assignment);
    });
  });
  return processes.map((p, i) => ({
    place: places[i]!,
    reports: p.reports,
    stderrTail: p.stderrTail,
    exitedAfterMs: p.exitedAfterMs,
    ...(failures[i] ? { failure: failures[i] } : {}),
  }));
}
