import type { ChildProcess } from 'node:child_process';

/**
 * Collects the JSON lines a child process prints on stdout, so callers can wait for the one
 * they need without racing the stream. Non-JSON lines are ignored; stderr is kept (tail) for
 * error messages.
 */
export class JsonLineReader {
  readonly lines: Record<string, unknown>[] = [];
  private stderrTail = '';
  private pending = '';
  private readonly waiters = new Set<() => void>();
  private exited: string | undefined;

  constructor(
    readonly child: ChildProcess,
    readonly label: string,
  ) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => this.onStdout(text));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-4_000);
    });
    child.once('exit', (code, signal) => {
      this.exited = `exited with ${signal ?? `code ${code}`}`;
      this.notify();
    });
  }

  get stderr(): string {
    return this.stderrTail;
  }

  /** Resolves with the first line (already seen or future) matching `predicate`. */
  waitFor(predicate: (line: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find(predicate);
        if (found) return finish(() => resolve(found));
        if (this.exited) return finish(() => reject(this.failure(what, this.exited ?? '')));
      };
      const timer = setTimeout(() => finish(() => reject(this.failure(what, `no answer within ${timeoutMs} ms`))), timeoutMs);
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

  private onStdout(text: string): void {
    this.pending += text;
    const parts = this.pending.split('\n');
    this.pending = parts.pop() ?? '';
    for (const part of parts) {
      try {
        const value: unknown = JSON.parse(part);
        if (value && typeof value === 'object' && !Array.isArray(value)) this.lines.push(value as Record<string, unknown>);
      } catch {
        // Not ours: a stray log line.
      }
    }
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** `node --import tsx <script>`: runs a TypeScript entry point with the project's tsx loader. */
export function nodeWithTsx(script: string, args: readonly string[] = []): [string, string[]] {
  return [process.execPath, ['--import', import.meta.resolve('tsx'), script, ...args]];
}
