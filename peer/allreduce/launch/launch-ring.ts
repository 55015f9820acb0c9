import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { LaunchedChild, superviseLaunch } from '../../launch/launched-child.js';
import { RANK_ENV, RING_EPOCH_ENV, WORLD_SIZE_ENV, type RingAssignment } from './launch-protocol.js';

export interface LaunchOptions {
  worldSize: number;
  /**
   * Starts rank `rank`'s process with `env` added to its environment; stdin and stdout must be pipes.
   * Plain `spawn` on this machine, or `lan.hosts[rank].exec` on the emulated LAN.
   */
  spawn(rank: number, env: Record<string, string>): ChildProcess;
  /** The whole run, start to exit; on expiry every rank is killed. */
  timeoutMs: number;
  /** Every `report` line, as it arrives. */
  onReport?(rank: number, kind: string, data: unknown): void;
  epoch?: number;
  /**
   * Wait for every rank to exit and report failures in the outcomes instead of killing the others at
   * the first one (for tests of how ranks react to a dead peer). The deadline still kills.
   */
  collectFailures?: boolean;
}

export interface RankOutcome {
  rank: number;
  /** Every `report` line of this rank, in order. */
  reports: { kind: string; data: unknown }[];
  stderrTail: string;
  /** Why the rank failed (only with collectFailures). */
  failure?: string;
  /** Milliseconds from launch to this rank's exit. */
  exitedAfterMs: number;
}

/**
 * Starts `worldSize` processes, tells each the next rank's address once all listen, and waits for all
 * to exit 0. Any failure (a rank exits non-zero, says it failed, or the deadline passes) kills every
 * rank and rejects with the failing rank's stderr, so a broken run never leaves processes behind.
 */
export async function launchRing(options: LaunchOptions): Promise<RankOutcome[]> {
  const { worldSize } = options;
  const secret = randomBytes(32).toString('hex');
  const started = performance.now();
  const ranks = Array.from(
    { length: worldSize },
    (_, rank) =>
      new LaunchedChild<{ host: string; port: number }>(
        `rank ${rank}`,
        options.spawn(rank, {
          [RANK_ENV]: String(rank),
          [WORLD_SIZE_ENV]: String(worldSize),
          [RING_EPOCH_ENV]: String(options.epoch ?? 0),
          RINGPIPE_SECRET: secret,
        }),
        {
          started,
          listeningOf: (line) => ({ host: String(line.host), port: Number(line.port) }),
          ...(options.onReport ? { onReport: (kind: string, data: unknown) => options.onReport!(rank, kind, data) } : {}),
        },
      ),
  );
  const failures = await superviseLaunch(ranks, { timeoutMs: options.timeoutMs, what: 'ring run', ...(options.collectFailures ? { collectFailures: true } : {}) }, (addresses) =>
    ranks.forEach((r, rank) => {
      const next = addresses[(rank + 1) % worldSize]!;
      const assignment: RingAssignment = worldSize > 1 ? { next: { host: next.host, port: next.port } } : {};
      r.assign(assignment);
    }),
  );
  return ranks.map((r, rank) => ({
    rank,
    reports: r.reports,
    stderrTail: r.stderrTail,
    exitedAfterMs: r.exitedAfterMs,
    ...(failures[rank] ? { failure: failures[rank] } : {}),
  }));
}
