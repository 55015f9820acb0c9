import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { isStageLine, REPLICA_ENV, REPLICAS_ENV, STAGE_ENV, STAGES_ENV, type Address, type StageAssignment, type StageLine, type StagePlace } from './launch-protocol.js';

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
      new StageProcess(
        place,
        options.spawn(place, {
          [STAGE_ENV]: String(place.stage),
          [STAGES_ENV]: String(stages),
          [REPLICA_ENV]: String(place.replica),
          [REPLICAS_ENV]: String(replicas),
          RINGPIPE_SECRET: secret,
        }),
        options.onReport,
        started,
      ),
  );
  const at = (stage: number, replica: number) => processes[replica * stages + stage]!;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pipeline run did not finish within ${options.timeoutMs} ms${describeStuck(processes)}`)), options.timeoutMs);
  });
  try {
    await Promise.race([Promise.all(processes.map((p) => p.listening)), deadline]);
    for (const p of processes) {
      const { stage, replica } = p.place;
      const assignment: StageAssignment = {};
      if (stage < stages - 1) assignment.next = at(stage + 1, replica).address!.pipeline!;
      if (replicas > 1) assignment.ringNext = at(stage, (replica + 1) % replicas).address!.ring!;
      p.child.stdin?.write(`${JSON.stringify(assignment)}\n`);
    }
    const exits = options.collectFailures ? processes.map((p) => p.exited.then(() => undefined, (error: Error) => error.message)) : processes.map((p) => p.exited);
    const failures = await Promise.race([Promise.all(exits), deadline]);
    return processes.map((p, i) => ({
      place: p.place,
      reports: p.reports,
      stderrTail: p.stderrTail,
      exitedAfterMs: p.exitedAfterMs,
      ...(failures[i] ? { failure: failures[i] } : {}),
    }));
  } catch (error) {
    processes.forEach((p) => p.kill());
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function describeStuck(processes: StageProcess[]): string {
  const running = processes.filter((p) => p.running);
  if (running.length === 0) return '';
  return `; still running: ${running.map((p) => `${p.name}${p.stderrTail ? ` (stderr tail: ${p.stderrTail.trim().split('\n').slice(-3).join(' | ')})` : ''}`).join('; ')}`;
}

class StageProcess {
  readonly reports: { kind: string; data: unknown }[] = [];
  readonly listening: Promise<void>;
  readonly exited: Promise<void>;
  address: { pipeline?: Address; ring?: Address } | undefined;
  stderrTail = '';
  running = true;
  exitedAfterMs = NaN;
  private stdoutPending = '';
  private resolveListening!: () => void;
  private rejectListening!: (error: Error) => void;
  private failedMessage: string | undefined;

  constructor(
    readonly place: StagePlace,
    readonly child: ChildProcess,
    private readonly onReport: LaunchStagesOptions['onReport'],
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
    // A process that dies before reading its assignment: its exit explains it better than EPIPE.
    child.stdin?.on('error', () => {});
    this.exited = new Promise((resolve, reject) => {
      child.once('error', (error) => reject(new Error(`${this.name} could not start: ${error.message}`)));
      child.once('exit', (code, signal) => {
        this.running = false;
        this.exitedAfterMs = performance.now() - started;
        const failure = this.failedMessage ?? (code === 0 ? undefined : `exited with ${signal ?? `code ${code}`}`);
        const error = failure ? new Error(`${this.name} ${failure}${this.stderrTail ? `\n--- ${this.name} stderr (tail) ---\n${this.stderrTail.trim()}` : ''}`) : undefined;
        this.rejectListening(error ?? new Error(`${this.name} exited before listening`));
        if (error) reject(error);
        else resolve();
      });
    });
    this.exited.catch(() => {});
  }

  get name(): string {
    return `stage ${this.place.stage}${this.place.replicas > 1 ? ` of replica ${this.place.replica}` : ''}`;
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
      if (isStageLine(value)) this.onLine(value);
    }
  }

  private onLine(line: StageLine): void {
    switch (line.ringpipe) {
      case 'listening':
        this.address = { ...(line.pipeline ? { pipeline: line.pipeline } : {}), ...(line.ring ? { ring: line.ring } : {}) };
        this.resolveListening();
        break;
      case 'report':
        this.reports.push({ kind: line.kind, data: line.data });
        this.onReport?.(this.place, line.kind, line.data);
        break;
      case 'failed':
        this.failedMessage = `failed: ${line.message}`;
        break;
    }
  }
}
