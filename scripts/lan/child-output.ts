import type { ChildProcess } from 'node:child_process';

export interface JsonLineReaderOptions {
  /**
   * The stream carrying the JSON lines: `stdout` (test fixtures) or `stderr` (where the real
   * commands' pino logs go; their stdout holds lines for humans). Default: stdout.
   */
  jsonFrom?: 'stdout' | 'stderr';
}

/**
 * Collects the JSON lines a child process prints (on stdout unless told otherwise), so callers
 * can wait for the one they need without racing the stream. Other lines of both streams are kept
 * in `textLines`; stderr is also kept (tail) for error messages.
 */
export class JsonLineReader {
  readonly lines: Record<string, unknown>[] = [];
  /** Lines that are not JSON objects, from either stream (e.g. `error: …` before an exit). */
  readonly textLines: string[] = [];
  private stderrTail = '';
  private readonly pending = { stdout: '', stderr: '' };
  private readonly waiters = new Set<() => void>();
  private exited: string | undefined;
  private exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly child: ChildProcess,
    readonly label: string,
    private readonly options: JsonLineReaderOptions = {},
  ) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => this.onData('stdout', text));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-4_000);
      this.onData('stderr', text);
    });
    child.once('exit', (code, signal) => {
      this.exited = `exited with ${signal ?? `code ${code}`}`;
      this.exitStatus = { code, signal };
      this.notify();
    });
  }

  /** Resolves with the exit code and signal once the child has exited (or rejects after `timeoutMs`). */
  waitForExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.settleWhen(() => (this.exitStatus ? { value: this.exitStatus } : undefined), timeoutMs, () => this.failure('its exit', `still running after ${timeoutMs} ms`));
  }

  get stderr(): string {
    return this.stderrTail;
  }

  /** Resolves with the first line (already seen or future) matching `predicate`. */
  waitFor(predicate: (line: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    return this.settleWhen<Record<string, unknown>>(
      () => {
        const found = this.lines.find(predicate);
        if (found) return { value: found };
        if (this.exited) return { error: this.failure(what, this.exited) };
        return undefined;
      },
      timeoutMs,
      () => this.failure(what, `no answer within ${timeoutMs} ms`),
    );
  }

  /** Settles as `outcome` says, asked now and after every new line or the exit; rejects with `timedOut()` after `timeoutMs`. */
  private settleWhen<T>(outcome: () => { value: T } | { error: Error } | undefined, timeoutMs: number, timedOut: () => Error): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const settled = outcome();
        if (settled) finish(() => ('error' in settled ? reject(settled.error) : resolve(settled.value)));
      };
      const timer = setTimeout(() => finish(() => reject(timedOut())), timeoutMs);
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  private failure(what: string, why: string): Error {
    const tail = this.stderrTail.trim();
    return new Error(`${this.label}: waiting for ${what}: ${why}${tail ? `\n--- stderr (tail) ---\n${tail}` : ''}`);
  }

  private onData(stream: 'stdout' | 'stderr', text: string): void {
    const parts = (this.pending[stream] + text).split('\n');
    this.pending[stream] = parts.pop() ?? '';
    const jsonHere = stream === (this.options.jsonFrom ?? 'stdout');
    for (const part of parts) {
      const value = jsonHere ? parseObject(part) : undefined;
      if (value) this.lines.push(value);
      else if (part.trim() !== '') this.textLines.push(part);
    }
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

function parseObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // Not ours: a stray line.
  }
}

/** `node --import tsx <script>`: runs a TypeScript entry point with the project's tsx loader. */
export function nodeWithTsx(script: string, args: readonly string[] = []): [string, string[]] {
  return [process.execPath, ['--import', import.meta.resolve('tsx'), script, ...args]];
}
