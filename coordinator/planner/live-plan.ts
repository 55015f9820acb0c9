/**
 * The capacity planner for the running cluster (issue #11, "the same on the dashboard"): the job's
 * model is measured once, in a child process (measure-main.ts), and re-planned on the peers
 * connected at each request — planning is pure and instant, so peers coming and going cost nothing.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ASSUMED_LINK, ASSUMED_NETWORK_LATENCY_MS, LOCAL_HOST, type ClusterSpec, type LinkMeasurement, type PeerSpec } from './cluster.js';
import { IDLE_HOST, type HostLoad } from './host-sharing.js';
import { localHostLoad } from './machine-load.js';
import type { ModelMeasurements } from './model-measurements.js';
import { formatPlan } from './format-plan.js';
import { costAt } from './linear-cost.js';
import { planCapacity, type CapacityPlan } from './plan-capacity.js';
import { parseBandwidth } from './units.js';

/** A connected peer as the coordinator knows it. */
export interface LivePeer {
  nodeId: string;
  /** The address the coordinator sees it at (loopback or one of this machine's: the same host). */
  address: string;
  hostname?: string;
  backend?: string;
  /** Free memory it advertised, when known. */
  memoryBytes?: number;
  /**
   * Its measured compute time for a step of `localBatch` samples (from its progress reports), when
   * known: gives its speed relative to this machine.
   */
  measuredStep?: { computeMs: number; localBatch: number };
}

export interface LiveJob {
  model: string;
  batchSize: number;
  optimizer: string;
  backend: string;
}

export interface LivePlanAnswer {
  status: 'ready';
  plan: CapacityPlan;
  text: string;
  peers: number;
  measuredAt: string;
}
export interface LivePlanPending {
  status: 'measuring' | 'failed' | 'no-peers';
  message: string;
}

const MEASURE_PROGRAM = path.join(path.dirname(fileURLToPath(import.meta.url)), 'measure-main.ts');
const MEASURE_TIMEOUT_MS = 300_000;

interface Measured {
  measurements: ModelMeasurements;
  loopback: LinkMeasurement;
}

/**
 * Plans the job's model on the live peers. `answer()` never waits for the measurement: the first call
 * starts it and says so; later calls plan with it (or repeat why it failed; a failed measurement is
 * retried on the next call).
 */
export class LivePlanner {
  private measuring: Promise<Measured> | undefined;
  private measured: { value: Measured; at: Date } | undefined;
  private failure: string | undefined;

  constructor(
    private readonly job: LiveJob,
    private readonly livePeers: () => LivePeer[],
    private readonly measure: (job: LiveJob) => Promise<Measured> = measureInChild,
  ) {}

  answer(): LivePlanAnswer | LivePlanPending {
    if (!this.measured) {
      if (!this.measuring) {
        this.failure = undefined;
        this.measuring = this.measure(this.job).then(
          (value) => {
            this.measured = { value, at: new Date() };
            return value;
          },
          (error: unknown) => {
            this.failure = (error as Error).message;
            this.measuring = undefined;
            throw error;
          },
        );
        this.measuring.catch(() => {});
      }
      if (this.failure) return { status: 'failed', message: `measuring model ${this.job.model} failed: ${this.failure}` };
      return { status: 'measuring', message: `measuring model ${this.job.model} on this machine (a few seconds to a minute); ask again shortly` };
    }
    const peers = this.livePeers();
    if (peers.length === 0) return { status: 'no-peers', message: 'no peers are connected: start peers (npm run peer) and ask again' };
    const { measurements, loopback } = this.measured.value;
    const cluster = liveCluster(peers, { loopback, localLoad: localHostLoad(measurements.load), measurements });
    const plan = planCapacity(measurements, cluster, { batchSize: this.job.batchSize, pipeline: peers.length > 1 });
    return { status: 'ready', plan, text: formatPlan(plan), peers: peers.length, measuredAt: this.measured.at.toISOString() };
  }

  /** Resolves once the model has been measured (for callers that can wait, e.g. tests). */
  async ready(): Promise<void> {
    this.answer();
    if (this.measuring) await this.measuring;
  }
}

function isThisMachine(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/^::ffff:/, '');
  if (bare === '::1' || bare.startsWith('127.')) return true;
  return Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address === bare));
}

/** Work of a training step of `samples` on an idle core of this machine (passes, loss, update), from the measurements. */
function idleStepMs(m: ModelMeasurements, samples: number): number {
  return m.layers.reduce((total, layer) => total + costAt(layer.forwardBackward, samples) + layer.updateMs, costAt(m.loss, samples));
}

/**
 * The connected peers as a cluster: peers on this machine share its cores (at the load measured)
 * and its free memory; other machines are taken as idle, with the speed their progress reports
 * show (else this machine's) and the memory they advertised (else this machine's free memory).
 */
export function liveCluster(peers: readonly LivePeer[], context: { loopback: LinkMeasurement; localLoad: HostLoad; measurements: ModelMeasurements }): ClusterSpec {
  const assumptions: string[] = [];
  const local = peers.filter((p) => isThisMachine(p.address));
  const link = parseBandwidth(ASSUMED_LINK);
  let memoryAssumed = false;
  let speedAssumed = false;
  const specs: PeerSpec[] = peers.map((peer) => {
    const here = isThisMachine(peer.address);
    let memoryBytes = peer.memoryBytes;
    if (memoryBytes === undefined) {
      memoryBytes = here ? os.freemem() / Math.max(1, local.length) : os.freemem();
      if (!here) memoryAssumed = true;
    }
    let speed = 1;
    // Peers here are modelled by this machine's measured load; elsewhere the reports give the speed.
    if (!here && peer.measuredStep && peer.measuredStep.computeMs > 0) speed = idleStepMs(context.measurements, peer.measuredStep.localBatch) / peer.measuredStep.computeMs;
    else if (!here) speedAssumed = true;
    return {
      name: peer.hostname ? `${peer.nodeId} (${peer.hostname})` : peer.nodeId,
      memoryBytes,
      speed,
      linkBytesPerSecond: here ? context.loopback.bytesPerSecond : link,
      host: here ? LOCAL_HOST : peer.address.replace(/:\d+$/, ''),
      ...(peer.backend ? { backend: peer.backend } : {}),
    };
  });
  if (local.length > 0) assumptions.push(`the ${local.length} peer(s) on this machine share its free memory and its cores, at the load measured with the model`);
  if (memoryAssumed) assumptions.push("peers on other machines did not advertise their memory: taken as this machine's free memory");
  if (speedAssumed) assumptions.push("peers on other machines without a measured step: taken as fast as this machine");
  if (specs.some((p) => p.host !== LOCAL_HOST)) assumptions.push(`other machines: idle, one core per peer, links of ${ASSUMED_LINK} and ${ASSUMED_NETWORK_LATENCY_MS} ms one-way latency (assumed)`);
  const hosts: Record<string, HostLoad> = {};
  for (const spec of specs) hosts[spec.host] ??= spec.host === LOCAL_HOST ? context.localLoad : IDLE_HOST(specs.filter((p) => p.host === spec.host).length);
  return { peers: specs, hosts, loopback: context.loopback, networkLatencyMs: ASSUMED_NETWORK_LATENCY_MS, source: `${peers.length} peers connected to the coordinator`, assumptions };
}

/** Runs measure-main.ts in a child process; rejects with its error output, or after a timeout. */
function measureInChild(job: LiveJob): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MEASURE_PROGRAM, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RINGPIPE_LOG_LEVEL: 'warn' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no result after ${MEASURE_TIMEOUT_MS / 1000} s`));
    }, MEASURE_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('measured '));
      if (code === 0 && line) resolve(JSON.parse(line.slice('measured '.length)) as Measured);
      else reject(new Error(err.trim().split('\n').at(-1) || `the measuring process exited with code ${code}`));
    });
  });
}
