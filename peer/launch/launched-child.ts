import type { ChildProcess } from 'node:child_process';

/**
 * The launcher side of a process started for a local run (ring ranks, pipeline stages): it prints
 * JSON lines tagged `ringpipe` on stdout (`listening` with where it accepts links, `report`,
 * `failed`) and reads whom to dial as one JSON line on stdin. Pipes rather than IPC, so it also
 * works through `ip netns exec` on the emulated LAN. One implementation for both launchers
 * (peer/allreduce/launch/, peer/pipeline/launch/).
 */
export class LaunchedChild<Listening> {
  readonly reports: { kind: string; data: unknown }[] = [];
  /** What the child's `listening` line says, once it says it; rejects if it exits first. */
  readonly listening: Promise<Listening>;
  /** Resolves on exit 0; rejects (with the stderr tail) on another exit, a `failed` line or a spawn error. */
  readonly exited: Promise<void>;
  stderrTail = '';
  running = true;
  exitedAfterMs = NaN;
  private stdoutPending = '';
  private resolveListening!: (value: Listening) => void;
  private rejectListening!: (error: Error) => void;
  private failedMessage: string | undefined;

  constructor(
    /** For messages: "rank 2", "stage 1 of replica 0". */
    readonly name: string,
    readonly child: ChildProcess,
    private readonly options: {
      /** performance.now() at launch, for exitedAfterMs. */
      started: number;
      /** Reads the child's `listening` line. */
      listeningOf(line: Record<string, unknown>): Listening;
      onReport?(kind: string, data: unknown): void;
    },
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
      child.once('error', (error) => reject(new Error(`${name} could not start: ${error.message}`)));
      child.once('exit', (code, signal) => {
        this.running = false;
        this.exitedAfterMs = performance.now() - options.started;
        const failure = this.failedMessage ?? (code === 0 ? undefined : `exited with ${signal ?? `code ${code}`}`);
        const error = failure ? new Error(`${name} ${failure}${this.stderrTail ? `\n--- ${name} stderr (tail) ---\n${this.stderrTail.trim()}` : ''}`) : undefined;
        this.rejectListening(error ?? new Error(`${name} exited before listening`));
        if (error) reject(error);
        else resolve();
      });
    });
    this.exited.catch(() => {});
  }

  /** Tells the child whom to dial (one JSON line on its stdin). */
  assign(assignment: unknown): void {
    this.child.stdin?.write(`${JSON.stringify(assignment)}\n`);
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
      if (typeof value === 'object' && value !== null && typeof (value as { ringpipe?: unknown }).ringpipe === 'string') this.onLine(value as Record<string, unknown>);
    }
  }

  private onLine(line: Record<string, unknown>): void {
    switch (line.ringpipe) {
      case 'listening':
        this.resolveListening(this.options.listeningOf(line));
        break;
      case 'report':
        this.reports.push({ kind: String(line.kind), data: line.data });
        this.options.onReport?.(String(line.kind), line.data);
        break;
      case 'failed':
        this.failedMessage = `failed: ${String(line.message)}`;
        break;
    }
  }
}

/**
 * Runs a launch: waits until every child listens, lets `assign` tell each whom to dial, then waits
 * for all to exit 0. Any failure (a non-zero exit, a `failed` line, the deadline) kills every child
 * and rejects with the failing one's stderr, so a broken run never leaves processes behind. With
 * `collectFailures`, failures are returned per child instead (the deadline still kills).
 */
export async function superviseLaunch<L>(
  children: readonly LaunchedChild<L>[],
  options: { timeoutMs: number; collectFailures?: boolean; what: string },
  assign: (listening: L[]) => void,
): Promise<(string | undefined)[]> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${options.what} did not finish within ${options.timeoutMs} ms${describeStuck(children)}`)), options.timeoutMs);
  });
  try {
    assign(await Promise.race([Promise.all(children.map((c) => c.listening)), deadline]));
    const exits = options.collectFailures ? children.map((c) => c.exited.then(() => undefined, (error: Error) => error.message)) : children.map((c) => c.exited.then(() => undefined));
    return await Promise.race([Promise.all(exits), deadline]);
  } catch (error) {
    children.forEach((c) => c.kill());
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function describeStuck<L>(children: readonly LaunchedChild<L>[]): string {
  const running = children.filter((c) => c.running);
  if (running.length === 0) return '';
  return `; still running: ${running.map((c) => `${c.name}${c.stderrTail ? ` (stderr tail: ${c.stderrTail.trim().split('\n').slice(-3).join(' | ')})` : ''}`).join('; ')}`;
}
