import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface ManagedChildOptions {
  /** Name in messages ("coordinator", "peer-1"). */
  name: string;
  /** Script run with `node --import tsx`. */
  script: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stderr (the JSON logs) goes to this file; kept in memory (tail) otherwise. */
  logFile?: string;
  /** Every stdout line, as it arrives. */
  onLine?(line: string): void;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A ringpipe process started by a launcher or a test: `node --import tsx script …` in its own
 * process group (so a terminal's Ctrl+C reaches only the launcher, which shuts things down in
 * order), stdout read line by line, stderr to a log file, and a stop that escalates from a polite
 * signal to SIGKILL after a deadline — a stuck child never outlives its owner.
 */
export class ManagedChild {
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  readonly lines: string[] = [];
  private stderrTail = '';
  private pending = '';
  private readonly log: WriteStream | undefined;
  private readonly waiters = new Set<() => void>();
  private exit: ChildExit | undefined;

  constructor(private readonly options: ManagedChildOptions) {
    this.log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
    this.process = spawn(process.execPath, ['--import', 'tsx', options.script, ...options.args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.process.stdout?.setEncoding('utf8');
    this.process.stdout?.on('data', (text: string) => this.onStdout(text));
    this.process.stderr?.on('data', (chunk: Buffer) => {
      this.log?.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-8_000);
    });
    this.exited = new Promise((resolve) => {
      this.process.once('error', (error) => {
        this.stderrTail += `\ncould not start: ${error.message}`;
        this.settleExit({ code: null, signal: null }, resolve);
      });
      this.process.once('exit', (code, signal) => this.settleExit({ code, signal }, resolve));
    });
  }

  get name(): string {
    return this.options.name;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get exitInfo(): ChildExit | undefined {
    return this.exit;
  }

  /** The last few KB of stderr, for error messages. */
  get stderr(): string {
    return this.stderrTail;
  }

  /** The first stdout line matching `pattern` (seen already or to come); rejects on exit or timeout. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        for (const line of this.lines) {
          const match = pattern.exec(line);
          if (match) return done(() => resolve(match));
        }
        if (this.exit) done(() => reject(new Error(`${this.name} exited (${describeExit(this.exit!)}) before printing ${pattern}${this.tail()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms${this.tail()}`))), timeoutMs);
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Sends `signal` to the child's process group. */
  signal(signal: NodeJS.Signals): void {
    if (!this.running || this.process.pid === undefined) return;
    try {
      process.kill(-this.process.pid, signal);
    } catch {
      this.process.kill(signal);
    }
  }

  /** `signal`, then SIGKILL if it has not exited after `graceMs`. Resolves on exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<ChildExit> {
    if (!this.running) return this.exit!;
    this.signal(signal);
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private tail(): string {
    const text = this.stderrTail.trim().split('\n').slice(-5).join('\n');
    return text ? `\n--- ${this.name} stderr (tail) ---\n${text}` : '';
  }

  private settleExit(exit: ChildExit, resolve: (exit: ChildExit) => void): void {
    if (this.exit) return;
    this.exit = exit;
    if (this.pending) this.pushLine(this.pending);
    this.log?.end();
    resolve(exit);
    for (const waiter of [...this.waiters]) waiter();
  }

  private onStdout(text: string): void {
    this.pending += text;
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) this.pushLine(line);
  }

  private pushLine(line: string): void {
    this.lines.push(line);
    this.options.onLine?.(line);
    for (const waiter of [...this.waiters]) waiter();
  }
}

export function describeExit(exit: ChildExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}
