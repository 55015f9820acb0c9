import { readFileSync } from 'node:fs';
import os from 'node:os';
import { competingFromShare, type HostLoad } from './host-sharing.js';

/** What this machine looked like while the planner measured on it. */
export interface MeasuredLoad {
  cores: number;
  /**
   * CPU time ÷ wall time of the measuring process over the measurements: the share of a core it got
   * (its main thread computes; V8's helper threads add a little). Work ÷ share = wall time here.
   */
  coreShare: number;
  /** 1-minute load average at the end of the measurements (for the record; the model uses the share). */
  loadAverage: number;
  /** Mean count of other runnable threads (Linux /proc/loadavg), when available. */
  runnableOthers?: number;
  /** Linux autogroup: processes of one session share one scheduling group. */
  autogroup: boolean;
}

/** Reads the number of currently runnable threads (Linux), undefined elsewhere. */
export function runnableThreads(): number | undefined {
  try {
    const fields = readFileSync('/proc/loadavg', 'utf8').split(' ');
    const running = Number(fields[3]?.split('/')[0]);
    return Number.isFinite(running) ? running : undefined;
  } catch {
    return undefined;
  }
}

export function autogroupEnabled(): boolean {
  try {
    return readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

/**
 * Measures the CPU share this process gets while it runs busy work, and samples the runnable-thread
 * count at each `sample()` call (between phases of the busy work: synchronous work blocks timers).
 */
export class LoadMeter {
  private readonly cpuStart = cpuNowMs();
  private readonly wallStart = performance.now();
  private readonly runnable: number[] = [];

  sample(): void {
    const running = runnableThreads();
    // This thread is running while it reads: it is not "other" work.
    if (running !== undefined) this.runnable.push(Math.max(0, running - 1));
  }

  finish(): MeasuredLoad {
    this.sample();
    const wallMs = performance.now() - this.wallStart;
    const coreShare = Math.min(1, Math.max(1e-3, (cpuNowMs() - this.cpuStart) / Math.max(wallMs, 1e-6)));
    const mean = this.runnable.length > 0 ? this.runnable.reduce((a, b) => a + b, 0) / this.runnable.length : undefined;
    return {
      cores: os.cpus().length,
      coreShare,
      loadAverage: os.loadavg()[0]!,
      ...(mean !== undefined ? { runnableOthers: mean } : {}),
      autogroup: autogroupEnabled(),
    };
  }
}

/**
 * This machine as a host for local peers, at the load measured now. `oneSession`: the peers are
 * started in one session (a launcher's plain children), so with autogroup they share one scheduling
 * group; `npm start` starts each peer in a session of its own (the default here). With
 * `measuredSharePerPeer` (measure-sharing.ts) the measured shares replace the fluid model.
 */
export function localHostLoad(load: MeasuredLoad, options: { oneSession?: boolean; measuredSharePerPeer?: number[] } = {}): HostLoad {
  return {
    cores: load.cores,
    competing: competingFromShare(load.cores, load.coreShare, load.runnableOthers),
    peersShareGroup: (options.oneSession ?? false) && load.autogroup,
    ...(options.measuredSharePerPeer ? { measuredSharePerPeer: options.measuredSharePerPeer } : {}),
  };
}

/** Busy and total CPU time of the whole machine so far, all cores (Linux /proc/stat), in ticks. */
export function machineCpuTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  } catch {
    return undefined;
  }
}

/** Cores busy on average between two snapshots (all processes). */
export function busyCoresBetween(before: { busy: number; total: number }, after: { busy: number; total: number }, cores: number): number {
  const total = after.total - before.total;
  return total > 0 ? ((after.busy - before.busy) / total) * cores : NaN;
}
