/**
 * One coordinator per run folder. Two coordinators writing the same checkpoints and loss curve would
 * interleave them and each would resume from the other's half-written state, so the folder holds a
 * lock file naming its holder (host, pid, start time), refreshed while the holder lives.
 *
 * A lock is live when it was refreshed recently and, on this host, its process still exists. A lock
 * left by a process that died (kill -9, power loss) is taken over with a warning; on another host
 * (a shared volume, a rescheduled Kubernetes pod) only its age can tell, so it is taken over once it
 * has gone unrefreshed for `staleAfterMs`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../../shared/log/logger.js';

export const LOCK_FILE = 'coordinator.lock';
const REFRESH_MS = 5_000;
const STALE_AFTER_MS = 30_000;
/** A lock file is written in one call; one still unreadable after this is damaged, not being written. */
const UNREADABLE_GRACE_MS = 2_000;

interface LockRecord {
  hostname: string;
  pid: number;
  startedAt: string;
  token: string;
}

export class RunFolderBusyError extends Error {
  constructor(
    readonly folder: string,
    readonly holder: LockRecord | undefined,
  ) {
    const who = holder ? `the coordinator with pid ${holder.pid} on ${holder.hostname} (since ${holder.startedAt})` : 'another coordinator (its lock file is being written)';
    super(`the run folder ${folder} is in use by ${who}. Stop that coordinator first, or give this one another --run-dir (and checkpoint.dir).`);
    this.name = 'RunFolderBusyError';
  }
}

export interface RunFolderLock {
  readonly file: string;
  /** Removes the lock if it is still ours. Safe to call twice. */
  release(): void;
}

export interface LockOptions {
  log?: Logger;
  staleAfterMs?: number;
  refreshMs?: number;
  /** Injectable for tests: whether a process of this host exists. */
  processExists?: (pid: number) => boolean;
}

/** Takes the lock of `folder` (created if missing) or throws `RunFolderBusyError`. */
export function lockRunFolder(folder: string, options: LockOptions = {}): RunFolderLock {
  const staleAfterMs = options.staleAfterMs ?? STALE_AFTER_MS;
  const processExists = options.processExists ?? pidExists;
  mkdirSync(folder, { recursive: true });
  const file = path.join(folder, LOCK_FILE);
  const record: LockRecord = { hostname: os.hostname(), pid: process.pid, startedAt: new Date().toISOString(), token: randomBytes(8).toString('hex') };

  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(record)}\n`, { flag: 'wx' });
      return holdLock(file, record, options.refreshMs ?? REFRESH_MS, options.log);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readHolder(file);
    if (holder === 'gone') continue; // released between our two calls
    const reason = staleness(file, holder, staleAfterMs, processExists);
    if (!reason) throw new RunFolderBusyError(folder, holder === 'unreadable' ? undefined : holder);
    options.log?.warn({ lock: file, holder }, `taking over the run folder's lock: ${reason}`);
    // Move it aside rather than delete it, so that of two coordinators taking over at once only one succeeds.
    try {
      renameSync(file, `${file}.stale-${record.token}`);
      unlinkSync(`${file}.stale-${record.token}`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  throw new Error(`could not take the lock ${file}: other coordinators keep taking it; start one at a time`);
}

/**
 * `lockRunFolder`, but a live-looking lock of another host gets the time to go stale first: a pod
 * rescheduled to another node starts while its dead predecessor's lock is still fresh. A lock that
 * keeps being refreshed all that time belongs to a coordinator that really runs: then it throws.
 */
export async function acquireRunFolderLock(folder: string, options: LockOptions = {}): Promise<RunFolderLock> {
  const deadline = Date.now() + (options.staleAfterMs ?? STALE_AFTER_MS) + (options.refreshMs ?? REFRESH_MS);
  let told = false;
  for (;;) {
    try {
      return lockRunFolder(folder, options);
    } catch (error) {
      const otherHost = error instanceof RunFolderBusyError && error.holder !== undefined && error.holder.hostname !== os.hostname();
      if (!otherHost || Date.now() > deadline) throw error;
      if (!told) options.log?.warn({ folder, holder: error.holder }, `the run folder is locked by a coordinator on ${error.holder!.hostname}; waiting for it to stop refreshing the lock`);
      told = true;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}

function holdLock(file: string, record: LockRecord, refreshMs: number, log: Logger | undefined): RunFolderLock {
  let released = false;
  const ours = (): boolean => {
    const holder = readHolder(file);
    return holder !== 'gone' && holder !== 'unreadable' && holder.token === record.token;
  };
  // Touching the file says "still alive" to a coordinator on another host sharing the volume.
  const timer = setInterval(() => {
    try {
      const now = new Date();
      if (ours()) utimesSync(file, now, now);
      else log?.error({ lock: file }, 'another coordinator took over this run folder; its checkpoints and this one may now interleave');
    } catch {
      // A transient error on a network volume: the next refresh tries again.
    }
  }, refreshMs);
  timer.unref();
  const release = (): void => {
    if (released) return;
    released = true;
    clearInterval(timer);
    process.off('exit', release);
    try {
      if (ours()) unlinkSync(file);
    } catch {
      // Already gone.
    }
  };
  process.on('exit', release);
  return { file, release };
}

/** Why the lock can be taken over, or undefined while its holder is alive. */
function staleness(file: string, holder: LockRecord | 'unreadable', staleAfterMs: number, processExists: (pid: number) => boolean): string | undefined {
  let ageMs: number;
  try {
    ageMs = Date.now() - statSync(file).mtimeMs;
  } catch {
    return 'it disappeared';
  }
  if (ageMs > staleAfterMs) return `not refreshed for ${Math.round(ageMs / 1000)} s`;
  if (holder === 'unreadable') return ageMs > UNREADABLE_GRACE_MS ? 'its lock file is damaged' : undefined; // else being written right now
  if (holder.hostname === os.hostname() && !processExists(holder.pid)) return `its coordinator (pid ${holder.pid}) is no longer running`;
  return undefined;
}

function readHolder(file: string): LockRecord | 'gone' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    return 'unreadable';
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockRecord>;
    if (typeof parsed.hostname === 'string' && typeof parsed.pid === 'number' && typeof parsed.token === 'string' && typeof parsed.startedAt === 'string') return parsed as LockRecord;
  } catch {
    // fall through
  }
  return 'unreadable';
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
