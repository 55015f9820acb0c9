import { RingNode, type JoinedRing, type JoinOptions, type RingNodeOptions } from '../ring-setup.js';
import { readAssignment } from '../../launch/read-assignment.js';
import { RANK_ENV, RING_EPOCH_ENV, RING_HOST_ENV, WORLD_SIZE_ENV, type ChildLine, type RingAssignment } from './launch-protocol.js';

/** This process's rank, as given by the launcher. */
export function rankFromEnv(env: NodeJS.ProcessEnv = process.env): { rank: number; worldSize: number; epoch: number } {
  const rank = Number(env[RANK_ENV]);
  const worldSize = Number(env[WORLD_SIZE_ENV]);
  const epoch = Number(env[RING_EPOCH_ENV] ?? 0);
  if (!Number.isInteger(rank) || !Number.isInteger(worldSize) || rank < 0 || rank >= worldSize) {
    throw new Error(`this program is started by a ring launcher: ${RANK_ENV} and ${WORLD_SIZE_ENV} must be set (got ${env[RANK_ENV]} and ${env[WORLD_SIZE_ENV]})`);
  }
  return { rank, worldSize, epoch };
}

/** Sends one line to the launcher. */
export function tellLauncher(line: ChildLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/**
 * Runs a launched rank's `main` and exits: 0 when it returns; when it throws, the launcher is told
 * why (so it can fail the run naming the rank) and the stack goes to stderr, exit 1.
 */
export function runLaunchedRank(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      tellLauncher({ ringpipe: 'failed', rank: Number(process.env[RANK_ENV]), message: (error as Error).message });
      process.stderr.write(`${(error as Error).stack}\n`);
      process.exit(1);
    },
  );
}

export function reportToLauncher(kind: string, data: unknown): void {
  tellLauncher({ ringpipe: 'report', rank: Number(process.env[RANK_ENV]), kind, data });
}

/**
 * Listens, tells the launcher where, waits for the next rank's address on stdin and joins the ring.
 * All within `timeoutMs`.
 */
export async function joinRingFromLauncher(options: Omit<RingNodeOptions, 'rank' | 'worldSize' | 'epoch'>, join: JoinOptions = {}): Promise<JoinedRing> {
  const timeoutMs = join.timeoutMs ?? 30_000;
  const { rank, worldSize, epoch } = rankFromEnv();
  const host = options.host ?? process.env[RING_HOST_ENV] ?? '127.0.0.1';
  const node = await RingNode.listen({ ...options, host, rank, worldSize, epoch });
  const address = node.address ?? { host, port: 0 };
  tellLauncher({ ringpipe: 'listening', rank, host: address.host, port: address.port });
  const assignment = await readAssignment<RingAssignment>(timeoutMs, 'ring');
  return node.join(assignment.next, { ...join, timeoutMs });
}
