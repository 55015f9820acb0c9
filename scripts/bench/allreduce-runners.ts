/**
 * Runs one benchmark pass of each contender and returns seconds per all-reduce for every size:
 * ours (scripts/bench/allreduce-worker.ts ranks joined by the ring launcher) and PyTorch gloo
 * (scripts/bench/allreduce_gloo.py). Both on loopback, or one process per emulated-LAN host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { launchRing } from '../../peer/allreduce/launch/launch-ring.js';
import { RING_HOST_ENV } from '../../peer/allreduce/launch/launch-protocol.js';
import type { LanHost } from '../lan/index.js';
import type { SizeReport, WorkerConfig } from './allreduce-worker.js';

const HERE = import.meta.dirname;
const WORKER = path.join(HERE, 'allreduce-worker.ts');
const GLOO = path.join(HERE, 'allreduce_gloo.py');
export const PYTHON = '/usr/bin/python3';

export interface SizeResult {
  bytes: number;
  /** Seconds per all-reduce of the slowest rank. */
  seconds: number;
  correct: boolean;
  /** The chunk our ring used for this size (ours only; the automatic choice with --chunk-bytes auto). */
  chunkBytes?: number;
  /** Per-rank averages of where our time went (ours only). */
  receiveWaitMs?: number;
  reduceMs?: number;
  /** CPU time per all-reduce (all threads), mean over ranks (gloo: rank 0's): tells work from waiting under load. */
  userCpuMs?: number;
  systemCpuMs?: number;
  /** Context switches per all-reduce (same sources): voluntary = waited for I/O, involuntary = preempted. */
  voluntarySwitches?: number;
  involuntarySwitches?: number;
}

/** Where the ranks run: this machine's loopback, or one LAN host each. */
export type Placement = { kind: 'loopback' } | { kind: 'lan'; hosts: LanHost[] };

export async function runOurs(peers: number, config: WorkerConfig, placement: Placement, timeoutMs: number): Promise<SizeResult[]> {
  const env = (rank: number, launcherEnv: Record<string, string>): NodeJS.ProcessEnv => ({
    ...process.env,
    ...launcherEnv,
    RINGPIPE_BENCH_CONFIG: JSON.stringify(config),
    RINGPIPE_LOG_LEVEL: 'warn',
    RINGPIPE_LOG_FORMAT: 'json',
    ...(placement.kind === 'lan' ? { [RING_HOST_ENV]: placement.hosts[rank]!.address } : {}),
  });
  // RINGPIPE_BENCH_CPU_PROF=DIR (bench:allreduce --cpu-prof DIR): a V8 CPU profile per rank, for Chrome DevTools.
  const profileDir = process.env.RINGPIPE_BENCH_CPU_PROF;
  // RINGPIPE_BENCH_NODE_ARGS="--log-deopt --logfile=…": extra V8/Node flags for every rank (profiling).
  const extraArgs = process.env.RINGPIPE_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const args = [...extraArgs, ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), '--import', 'tsx', WORKER];
  const outcomes = await launchRing({
    worldSize: peers,
    timeoutMs,
    spawn: (rank, launcherEnv): ChildProcess =>
      placement.kind === 'lan'
        ? placement.hosts[rank]!.exec(process.execPath, args, { env: env(rank, launcherEnv), stdio: ['pipe', 'pipe', 'pipe'], cwd: process.cwd() })
        : spawn(process.execPath, args, { env: env(rank, launcherEnv), stdio: ['pipe', 'pipe', 'pipe'] }),
  });
  return config.sizesBytes.map((bytes, index) => {
    const reports = outcomes.map((o) => o.reports.filter((r) => r.kind === 'size')[index]?.data as SizeReport | undefined);
    if (reports.some((r) => r === undefined || r.bytes !== bytes)) throw new Error(`a rank did not report size ${bytes}`);
    const all = reports as SizeReport[];
    return {
      bytes,
      seconds: Math.max(...all.map((r) => r.seconds)),
      correct: all.every((r) => r.correct),
      chunkBytes: all[0]!.chunkBytes,
      receiveWaitMs: mean(all.map((r) => r.receiveWaitMs)),
      reduceMs: mean(all.map((r) => r.reduceMs)),
      userCpuMs: mean(all.map((r) => r.userCpuMs)),
      systemCpuMs: mean(all.map((r) => r.systemCpuMs)),
      voluntarySwitches: mean(all.map((r) => r.voluntarySwitches)),
      involuntarySwitches: mean(all.map((r) => r.involuntarySwitches)),
    };
  });
}

/** Undefined (with the reason) when PyTorch is not installed for /usr/bin/python3. */
export async function glooAvailable(): Promise<string | undefined> {
  const child = spawn(PYTHON, ['-c', 'import torch.distributed as d; assert d.is_gloo_available()'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(-1));
    child.once('exit', (c) => resolve(c));
  });
  return code === 0 ? undefined : `PyTorch with gloo is not available for ${PYTHON} (Debian: apt-get install python3-torch); gloo column skipped`;
}

export async function runGloo(peers: number, config: WorkerConfig, placement: Placement, timeoutMs: number): Promise<SizeResult[]> {
  const common = ['--peers', String(peers), '--sizes', config.sizesBytes.join(','), '--warmup', String(config.warmup), '--iters', String(config.iters)];
  const env = { ...process.env, OMP_NUM_THREADS: '1' };
  let children: ChildProcess[];
  if (placement.kind === 'loopback') {
    children = [spawn(PYTHON, [GLOO, ...common, '--port', String(await freePort())], { env, stdio: ['ignore', 'pipe', 'pipe'] })];
  } else {
    // Fresh namespaces: any fixed port is free there.
    const master = placement.hosts[0]!.address;
    children = placement.hosts.slice(0, peers).map((host, rank) =>
      host.exec(PYTHON, [GLOO, ...common, '--port', '29500', '--master', master, '--rank', String(rank), '--iface', host.interfaceName], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
  }
  const outputs = await Promise.all(children.map((child, i) => collect(child, `gloo ${i}`, timeoutMs)));
  const lines = outputs.flatMap((text) => text.split('\n')).filter((line) => line.startsWith('{'));
  const results = lines.map((line) => JSON.parse(line) as { bytes: number; seconds: number; correct: boolean; userCpuMs: number; systemCpuMs: number; voluntarySwitches: number; involuntarySwitches: number });
  return config.sizesBytes.map((bytes) => {
    const found = results.find((r) => r.bytes === bytes);
    if (!found) throw new Error(`gloo reported no result for ${bytes} bytes`);
    return { bytes, seconds: found.seconds, correct: found.correct, userCpuMs: found.userCpuMs, systemCpuMs: found.systemCpuMs,
      voluntarySwitches: found.voluntarySwitches, involuntarySwitches: found.involuntarySwitches };
  });
}

function collect(child: ChildProcess, label: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${label} exited with ${signal ?? `code ${code}`}\n${stderr.trim()}`));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
