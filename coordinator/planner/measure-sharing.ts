import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { BackendFlag } from '../../shared/engine/backend-candidates.js';
import { LOCAL_HOST, type ClusterSpec } from './cluster.js';
import type { ModelMeasurements } from './model-measurements.js';
import { kappaOf } from './jitter.js';
import { SPEED_PROBE_ENV, type SpeedProbeConfig, type SpeedProbeReport } from './speed-probe.js';
import { backwardWork, forwardWork, stepOverheadWork, updateWork, wholeModel } from './stage-work.js';

const PROBE = path.join(import.meta.dirname, 'speed-probe.ts');

/** How fast peers of this machine compute when k of them are busy at once, measured. */
export interface SharingMeasurement {
  /** Per k = 1…n: cores' worth of work each busy peer gets (the model's CPU work ÷ wall time). */
  sharePerPeer: number[];
  /** Per k: wall milliseconds per probe step, mean over the busy processes. */
  stepMs: number[];
  /** Per k: variance ÷ mean of a step's wall time (ms; see jitter.ts), over the busy processes. */
  jitterMs: number[];
  probeBatch: number;
}

interface Probe {
  child: ChildProcess;
  lines: string[];
  waiters: ((line: string) => void)[];
}

function startProbe(config: SpeedProbeConfig, ownSession: boolean): Probe {
  const child = spawn(process.execPath, ['--import', 'tsx', PROBE], {
    env: { ...process.env, [SPEED_PROBE_ENV]: JSON.stringify(config), RINGPIPE_LOG_LEVEL: 'warn' },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: ownSession,
  });
  const probe: Probe = { child, lines: [], waiters: [] };
  let pending = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (text: string) => {
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      const waiter = probe.waiters.shift();
      if (waiter) waiter(line);
      else probe.lines.push(line);
    }
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => (stderr = (stderr + text).slice(-2000)));
  child.once('exit', (code) => {
    for (const waiter of probe.waiters.splice(0)) waiter(JSON.stringify({ exited: code, stderr }));
  });
  return probe;
}

function nextLine(probe: Probe, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sharing probe: no answer from a probe process within ${timeoutMs} ms`)), timeoutMs);
    const take = (line: string) => {
      clearTimeout(timer);
      const value = JSON.parse(line) as Record<string, unknown>;
      if ('exited' in value) reject(new Error(`sharing probe: a probe process exited (code ${String(value.exited)}): ${String(value.stderr).trim()}`));
      else resolve(value);
    };
    const queued = probe.lines.shift();
    if (queued !== undefined) take(queued);
    else probe.waiters.push(take);
  });
}

export interface MeasureSharingOptions {
  measurements: ModelMeasurements;
  backend: BackendFlag;
  /** Peers that will share this machine. */
  peers: number;
  /** Samples per probe step (e.g. a data-parallel replica's local batch). */
  batchSize: number;
  /** The mini-batch of the plan (withMeasuredLocalHost probes at its per-replica share). */
  batchSizeHint?: number;
  /** Seconds each phase trains (phases: k = 1…n busy, then n…1). Default: 1.5, or 3 steps if longer. */
  seconds?: number;
  /** Peers started as plain children of one launcher (one session) rather than one session each. */
  oneSession?: boolean;
  timeoutMs?: number;
}

/**
 * Starts `peers` processes that train the model on random data, then lets k = 1, 2, … of them
 * train at once for a few seconds each: how fast one peer computes when k peers share this machine,
 * with everything that entails (the scheduler's shares, other work, cores that slow each other down,
 * each process's helper threads). In units of the planner's measured CPU work, so stage and replica
 * costs of any batch convert to wall time.
 */
export async function measureSharing(options: MeasureSharingOptions): Promise<SharingMeasurement> {
  const { measurements: m } = options;
  // A probe step is a whole trainStep: its layers, loss, update and the trainer's own overhead.
  const work = forwardWork(m, wholeModel(m), options.batchSize) + backwardWork(m, wholeModel(m), options.batchSize) + updateWork(m, wholeModel(m)) + stepOverheadWork(m, options.batchSize);
  // Long enough for a few steps at the load measured with the model, so slow models are not quantised.
  const seconds = options.seconds ?? Math.max(1.5, (3 * work) / m.load.coreShare / 1000);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const config: SpeedProbeConfig = { model: m.model, batchSize: options.batchSize, optimizer: m.optimizer, backend: options.backend, seconds, inputShape: m.inputShape, numClasses: m.numClasses };
  const probes = Array.from({ length: options.peers }, () => startProbe(config, !options.oneSession));
  try {
    await Promise.all(probes.map((p) => nextLine(p, timeoutMs)));
    // k = 1…n, then n…1: a load that drifts during the probe weighs on every k alike.
    const order = [...Array.from({ length: options.peers }, (_, i) => i + 1), ...Array.from({ length: options.peers }, (_, i) => options.peers - i)];
    const samples: number[][] = Array.from({ length: options.peers }, () => []);
    const kappas: number[][] = Array.from({ length: options.peers }, () => []);
    for (const busy of order) {
      const running = probes.slice(0, busy);
      for (const p of running) p.child.stdin!.write('run\n');
      const reports = (await Promise.all(running.map((p) => nextLine(p, timeoutMs + seconds * 1000)))) as unknown as SpeedProbeReport[];
      // Total steps ÷ total time: a slow step counts as much as it lasted.
      samples[busy - 1]!.push(reports.reduce((total, r) => total + r.wallMs, 0) / Math.max(1, reports.reduce((total, r) => total + r.steps, 0)));
      for (const r of reports) kappas[busy - 1]!.push(kappaOf(r.stepWallMs));
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const stepMs = samples.map(mean);
    return { sharePerPeer: stepMs.map((ms) => work / ms), stepMs, jitterMs: kappas.map(mean), probeBatch: options.batchSize };
  } finally {
    for (const p of probes) {
      p.child.stdin!.end();
      if (p.child.exitCode === null) setTimeout(() => p.child.exitCode === null && p.child.kill('SIGKILL'), 5_000).unref();
    }
  }
}

/**
 * The cluster with this machine's host measured: when peers run here, how fast each computes with
 * 1…k of them busy (k = the peers on this machine), replacing the fluid sharing model for this host.
 */
export async function withMeasuredLocalHost(cluster: ClusterSpec, options: Omit<MeasureSharingOptions, 'peers' | 'batchSize' | 'batchSizeHint'> & { batchSizeHint: number }): Promise<ClusterSpec> {
  const local = cluster.peers.filter((p) => p.host === LOCAL_HOST).length;
  const host = cluster.hosts[LOCAL_HOST];
  if (local === 0 || !host) return cluster;
  const batchSize = Math.max(1, Math.ceil(options.batchSizeHint / cluster.peers.length));
  const sharing = await measureSharing({ ...options, peers: local, batchSize });
  return {
    ...cluster,
    hosts: { ...cluster.hosts, [LOCAL_HOST]: { ...host, measuredSharePerPeer: sharing.sharePerPeer, measuredJitterMs: sharing.jitterMs } },
    assumptions: [
      ...cluster.assumptions,
      `peers of this machine: how fast each computes with 1…${local} busy was measured by training the model in ${local} processes at once, each ${options.oneSession ? 'in the launcher\'s session' : 'in a session of its own (as npm start starts peers)'}; the load of other work is taken to stay as it was`,
    ],
  };
}
