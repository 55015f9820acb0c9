import { execFile, execFileSync } from 'node:child_process';

/** Every harness command is bounded: a wedged `ip` must fail a test, not hang it. */
export const COMMAND_TIMEOUT_MS = 10_000;

export class LanCommandError extends Error {
  constructor(command: string[], detail: string) {
    super(`\`${command.join(' ')}\` failed: ${detail}`);
    this.name = 'LanCommandError';
  }
}

function detailOf(err: unknown): string {
  const e = err as { stderr?: string | Buffer; message?: string; code?: string | number; killed?: boolean; signal?: string };
  if (e.code === 'ENOENT') return 'command not found (the LAN harness needs iproute2: `apt-get install iproute2`)';
  if (e.killed || e.signal === 'SIGTERM') return `timed out after ${COMMAND_TIMEOUT_MS} ms`;
  const stderr = e.stderr?.toString().trim();
  return stderr || e.message || String(err);
}

/** Runs a command, resolving with its stdout; rejects with the command line and its stderr. */
export function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new LanCommandError([command, ...args], detailOf({ ...err, stderr })));
      else resolve(stdout);
    });
  });
}

/** Synchronous twin of `run`, for exit handlers where nothing asynchronous can happen. */
export function runSync(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new LanCommandError([command, ...args], detailOf(err));
  }
}
