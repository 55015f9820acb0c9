import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { isChildLine, RANK_ENV, RING_EPOCH_ENV, WORLD_SIZE_ENV, type ChildLine, type RingAssignment } from './launch-protocol.js';

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
  const ranks = Array.from({ length: worldSize }, (_, rank) =>
    new RankProcess(
      rank,
      options.spawn(rank, {
        [RANK_ENV]: String(rank),
        [WORLD_SIZE_ENV]: String(worldSize),
        [RING_EPOCH_ENV]: String(options.epoch ?? 0),
        RINGPIPE_SECRET: secret,
      }),
      options.onReport,
      started,
    ),
  );
  const killAll = (): void => ranks.forEach((r) => r.kill());
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`ring run did not finish within ${options.timeoutMs} ms${describeStuck(ranks)}`)), options.timeoutMs);
  });
  try {
    const addresses = await Promise.race([Promise.all(ranks.map((r) => r.listening)), deadline]);
    ranks.forEach((r, rank) => {
      const next = addresses[(rank + 1) % worldSize]!;
      const assignment: RingAssignment = worldSize > 1 ? { next: { host: next.host, port: next.port } } : {};
      r.child.stdin?.write(`${JSON.stringify(assignment)}\n`);
    });
    const exits = options.collectFailures ? ranks.map((r) => r.exited.then(() => undefined, (error: Error) => error.message)) : ranks.map((r) => r.exited);
    const failures = await Promise.race([Promise.all(exits), deadline]);
    return ranks.map((r, rank) => ({
      rank: r.rank,
      reports: r.reports,
      stderrTail: r.stderrTail,
      exitedAfterMs: r.exitedAfterMs,
      ...(failures[rank] ? { failure: failures[rank] } : {}),
    }));
  } catch (error) {
    killAll();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function describeStuck(ranks: RankProcess[]): string {
  const running = ranks.filter((r) => r.running);
  if (running.length === 0) return '';
  return `; still running: ${running.map((r) => `rank ${r.rank}${r.stderrTail ? ` (stderr tail: ${r.stderrTail.trim().split('\n').slice(-3).join(' | ')})` : ''}`).join('; ')}`;
}

class RankProcess {
  readonly reports: { kind: string; data: unknown }[] = [];
  readonly listening: Promise<{ host: string; port: number }>;
  readonly exited: Promise<void>;
  stderrTail = '';
  running = true;
  exitedAfterMs = NaN;
  private stdoutPending = '';
  private resolveListening!: (address: { host: string; port: number }) => void;
  private rejectListening!: (error: Error) => void;
  private failedMessage: string | undefined;

  constructor(
    readonly rank: number,
    readonly child: ChildProcess,
    private readonly onReport: LaunchOptions['onReport'],
    started: number,
  ) {
    this.listening = new Promise((resolve, reject) => {
      this.resolveListening = resolve;
      this.rejectListening = reject;
    });
    this.listening.catch(() => {});
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => this.onStdout(text));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-6_000);
    });
    // Ignore EPIPE when a rank dies before reading its assignment: the exit explains it better.
    child.stdin?.on('error', () => {});
    this.exited = new Promise((resolve, reject) => {
      child.once('error', (error) => reject(new Error(`rank ${rank} could not start: ${error.message}`)));
      child.once('exit', (code, signal) => {
        this.running = false;
        this.exitedAfterMs = performance.now() - started;
        const failure = this.failedMessage ?? (code === 0 ? undefined : `exited with ${signal ?? `code ${code}`}`);
        const error = failure ? new Error(`rank ${rank} ${failure}${this.stderrTail ? `\n--- rank ${rank} stderr (tail) ---\n${this.stderrTail.trim()}` : ''}`) : undefined;
        this.rejectListening(error ?? new Error(`rank ${rank} exited before listening`));
        if (error) reject(error);
        else resolve();
      });
    });
    this.exited.catch(() => {});
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  private onStdout(text: string): void {
    this.stdoutPending += text;
    const lines = this.stdoutPending.split('\n');
    this.stdoutPending = lines.pop() ?? '';
    for (const line of lines) {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      if (isChildLine(value)) this.onLine(value);
    }
  }

  private onLine(line: ChildLine): void {
    switch (line.ringpipe) {
      case 'listening':
        this.resolveListening({ host: line.host, port: line.port });
        break;
      case 'report':
        this.reports.push({ kind: line.kind, data: line.data });
        this.onReport?.(this.rank, line.kind, line.data);
        break;
      case 'failed':
        this.failedMessage = `failed: ${line.message}`;
        break;
    }
  }
}
