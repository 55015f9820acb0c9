/**
 * `npm run plan -- --model <zoo name | model.json> [--batch N] [peers]`: the capacity planner. Measures
 * the model on this machine, then says whether it fits one peer, predicts data-parallel and pipeline
 * step times on the given (or discovered) peers, and recommends one with its reasons.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import {
  clusterFromDiscovery,
  clusterFromFile,
  discoverPeers,
  formatBytes,
  formatPlan,
  isOptimizerName,
  localCluster,
  LOCAL_HOST,
  localHostLoad,
  measureLoopbackLink,
  measureNamedModel,
  withMeasuredLocalHost,
  parseBandwidth,
  parseBytes,
  parsePeersFile,
  planCapacity,
  uniformCluster,
  type ClusterSpec,
  type LinkMeasurement,
  type ModelMeasurements,
} from '../coordinator/planner/index.js';
import { PipelineError } from '../peer/pipeline/errors.js';
import { parseBalance } from '../peer/pipeline/partition/balance.js';
import { describeSelection, selectBackend } from '../shared/engine/select-backend.js';
import { isBackendFlag } from '../shared/engine/backend-candidates.js';
import { createLogger } from '../shared/log/logger.js';
import { describeZoo } from '../shared/models/zoo.js';
import { isEntryPoint, parseCommandLine, runCommand } from '../shared/cli/command.js';

const HELP = `Usage: npm run plan -- --model <zoo name | model.json> [flags]

Measures the model on this machine (per-layer times, memory, FLOPs), then plans it on a cluster:
does it fit one peer, data parallel or a pipeline, predicted step times, a recommendation.

  --model NAME|PATH     zoo model or a TensorFlow.js model.json (or its folder)       [mlp]
  --batch N             mini-batch (global, over all replicas)                        [128]
  --optimizer NAME      adam | sgd | momentum | rmsprop (sets the optimizer state)    [adam]
  --backend NAME        auto | node-gpu | node | wasm | cpu                           [auto]
  --repeats N           timed repetitions per measurement (medians)                   [5]

Peers (one of):
  --peers N             N peers, each on a machine of its own, with
    --peer-memory SIZE    memory per peer, e.g. 2GiB                  [this machine's free memory]
    --peer-speed X        speed relative to this machine              [1]
    --link RATE           each peer's link, e.g. 1Gbit, 100Mbit/s     [1Gbit, said to be assumed]
  --peers N --local     N peers on this machine: they share its cores (at the load measured now),
                        its free memory and its loopback (measured)
    --one-session         the peers are plain children of one launcher (Linux autogroup: they share
                          one scheduling group); npm start gives each a session of its own
  --peers FILE.json     [{"name": "a", "memory": "2GiB", "link": "1Gbit", "speed": 1, "host": "box-a"}, …]
                        or {"peers": [...], "hosts": {"box-a": {"cores": 8, "busy": 0}}, "latency": 0.2}
                        (host "local": this machine)
  --discover --cluster NAME [--interface IF] [--discover-ms 3000] [--link RATE]
                        the peers advertised on mDNS now (free memory and backend from their TXT)

Pipeline:
  --pipeline            plan a pipeline even if the model fits one peer
  --stages K            stage count                                 [fastest of 2…peers]
  --balance A,B,…       layers per stage, as given                  [balanced by measured time]
  --micro M             micro-batches                               [fewest keeping the bubble ≤ target]
  --bubble X            bubble target (K − 1)/(M + K − 1)            [0.2]

  --json                print the plan as JSON (as the dashboard gets it)
  --help

Models:
${describeZoo().replace(/^/gm, '  ')}`;

class UsageError extends Error {}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`--${name} must be a positive whole number, got '${text}'`);
  return value;
}

type PeerChoice =
  | { kind: 'none' }
  | { kind: 'count'; count: number; local: boolean }
  | { kind: 'file'; path: string; json: unknown }
  | { kind: 'discover'; cluster: string };

/** Reads a peers file before anything is measured, so a mistake in it costs no waiting. */
async function readPeersFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--peers ${file}: not a number of peers, and the file cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--peers ${file}: not valid JSON (${(error as Error).message})`);
  }
  parsePeersFile(json, file);
  return json;
}

async function peerChoice(values: Record<string, string | boolean | undefined>): Promise<PeerChoice> {
  const peers = values.peers as string | undefined;
  if (values.discover) {
    if (peers !== undefined) throw new UsageError('give either --peers or --discover, not both');
    if (!values.cluster) throw new UsageError('--discover needs --cluster NAME (the cluster whose peers to find)');
    return { kind: 'discover', cluster: values.cluster as string };
  }
  if (values.local && peers === undefined) throw new UsageError('--local needs --peers N (how many peers on this machine)');
  if (peers === undefined) return { kind: 'none' };
  if (/^\d+$/.test(peers)) return { kind: 'count', count: positiveInt('peers', peers, 1), local: Boolean(values.local) };
  if (values.local) throw new UsageError(`--local takes a number of peers: --peers N --local, got --peers ${peers}`);
  return { kind: 'file', path: peers, json: await readPeersFile(peers) };
}

interface PeerFlags {
  link?: number;
  memory?: number;
  speed?: number;
}

/** The per-peer flags, read before anything is measured. */
function peerFlags(values: Record<string, string | boolean | undefined>): PeerFlags {
  const speed = values['peer-speed'] === undefined ? undefined : Number(values['peer-speed']);
  if (speed !== undefined && !(speed > 0)) throw new UsageError(`--peer-speed must be a positive number (1 = as fast as this machine), got '${values['peer-speed']}'`);
  return {
    ...(values.link !== undefined ? { link: parseBandwidth(values.link as string, '--link') } : {}),
    ...(values['peer-memory'] !== undefined ? { memory: parseBytes(values['peer-memory'] as string, '--peer-memory') } : {}),
    ...(speed !== undefined ? { speed } : {}),
  };
}

async function buildCluster(choice: PeerChoice, values: Record<string, string | boolean | undefined>, flags: PeerFlags, measurements: ModelMeasurements, measureLink: () => Promise<LinkMeasurement>): Promise<ClusterSpec | undefined> {
  const link = flags.link;
  const localLoad = localHostLoad(measurements.load, { oneSession: Boolean(values['one-session']) });
  switch (choice.kind) {
    case 'none':
      return undefined;
    case 'count': {
      if (choice.local) return localCluster({ count: choice.count, freeMemoryBytes: os.freemem(), load: localLoad, loopback: await measureLink() });
      const cluster = uniformCluster({
        count: choice.count,
        memoryBytes: flags.memory ?? os.freemem(),
        speed: flags.speed ?? 1,
        ...(link !== undefined ? { linkBytesPerSecond: link } : {}),
      });
      if (flags.memory === undefined) cluster.assumptions.push(`--peer-memory not given: each peer has this machine's free memory, ${formatBytes(os.freemem())}`);
      return cluster;
    }
    case 'file':
      return clusterFromFile(choice.json, choice.path, { loopback: await measureLink(), localLoad, ...(link !== undefined ? { defaultLinkBytesPerSecond: link } : {}) });
    case 'discover': {
      const nodes = await discoverPeers({ clusterName: choice.cluster, waitMs: positiveInt('discover-ms', values['discover-ms'] as string | undefined, 3000), ...(values.interface ? { interface: values.interface as string } : {}) });
      if (nodes.length === 0) throw new UsageError(`no peers of cluster "${choice.cluster}" answered on mDNS within ${values['discover-ms'] ?? 3000} ms: are they running with --cluster ${choice.cluster}, and does multicast reach this machine? Or describe them with --peers`);
      return clusterFromDiscovery(nodes, { backend: measurements.backend, loopback: await measureLink(), localLoad, clusterName: choice.cluster, ...(link !== undefined ? { linkBytesPerSecond: link } : {}) });
    }
  }
}

export async function main(argv: string[]): Promise<number> {
  const log = createLogger('plan');
  const parsed = parseCommandLine(
    argv,
    {
      model: { type: 'string' },
      batch: { type: 'string' },
      optimizer: { type: 'string' },
      backend: { type: 'string' },
      repeats: { type: 'string' },
      peers: { type: 'string' },
      'peer-memory': { type: 'string' },
      'peer-speed': { type: 'string' },
      link: { type: 'string' },
      local: { type: 'boolean' },
      'one-session': { type: 'boolean' },
      discover: { type: 'boolean' },
      cluster: { type: 'string' },
      interface: { type: 'string' },
      'discover-ms': { type: 'string' },
      pipeline: { type: 'boolean' },
      stages: { type: 'string' },
      balance: { type: 'string' },
      micro: { type: 'string' },
      bubble: { type: 'string' },
      json: { type: 'boolean' },
    },
    HELP,
  );
  if (parsed.exitCode !== undefined) return parsed.exitCode;
  const { values } = parsed;
  try {
    const model = (values.model as string | undefined) ?? 'mlp';
    const batchSize = positiveInt('batch', values.batch as string | undefined, 128);
    const optimizer = (values.optimizer as string | undefined) ?? 'adam';
    if (!isOptimizerName(optimizer)) throw new UsageError(`--optimizer must be adam, sgd, momentum or rmsprop, got '${optimizer}'`);
    const backend = (values.backend as string | undefined) ?? 'auto';
    if (backend !== 'auto' && !isBackendFlag(backend)) throw new UsageError(`--backend must be auto, node-gpu, node, wasm or cpu, got '${backend}'`);
    const bubble = values.bubble === undefined ? undefined : Number(values.bubble);
    if (bubble !== undefined && !(bubble > 0 && bubble < 1)) throw new UsageError(`--bubble is a fraction between 0 and 1 (e.g. 0.2), got '${values.bubble}'`);
    const flags = peerFlags(values);
    let balance: number[] | undefined;
    if (values.balance !== undefined) {
      try {
        balance = parseBalance(values.balance as string);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    }
    const choice = await peerChoice(values);

    const selection = await selectBackend(backend === 'auto' ? {} : { force: backend });
    log.info(describeSelection(selection), `tensor backend: ${selection.flag}`);
    log.info({ model, batchSize }, 'measuring the model on this machine (per-layer times at two batch sizes, memory, optimizer update)…');
    const measurements = await measureNamedModel({ model, batchSize, optimizer, repeats: positiveInt('repeats', values.repeats as string | undefined, 5) });
    log.info({ seconds: (measurements.measuredMs / 1000).toFixed(1), coreShare: measurements.load.coreShare.toFixed(2) }, 'measured');
    // Only when peers share a machine: the link between two processes of this one.
    const measureLink = async () => {
      log.info('measuring the loopback link between two processes (bandwidth, latency between busy processes)…');
      return measureLoopbackLink({ oneSession: Boolean(values['one-session']) });
    };
    let cluster = await buildCluster(choice, values, flags, measurements, measureLink);
    if (cluster?.peers.some((p) => p.host === LOCAL_HOST)) {
      log.info('measuring how fast peers compute when they share this machine…');
      cluster = await withMeasuredLocalHost(cluster, { measurements, backend: selection.flag, batchSizeHint: batchSize, oneSession: Boolean(values['one-session']) });
    }
    const plan = planCapacity(measurements, cluster, {
      batchSize,
      ...(bubble !== undefined ? { bubbleTarget: bubble } : {}),
      ...(values.pipeline ? { pipeline: true } : {}),
      ...(values.stages !== undefined ? { stages: positiveInt('stages', values.stages as string, 2) } : {}),
      ...(balance ? { balance } : {}),
      ...(values.micro !== undefined ? { microBatches: positiveInt('micro', values.micro as string, 1) } : {}),
    });
    process.stdout.write(values.json ? `${JSON.stringify(plan, null, 2)}\n` : `${formatPlan(plan)}\n`);
    return 0;
  } catch (error) {
    // Mistakes in what was asked (flags, files, a balance that does not match the model, a model that is not a chain): exit 2, message only.
    const pipelineUsage = error instanceof PipelineError && (error.kind === 'usage' || error.kind === 'not-sequential');
    if (error instanceof UsageError || pipelineUsage || (error as Error).name === 'UnitError' || (error as Error).name === 'PeersFileError') {
      process.stderr.write(`error: ${(error as Error).message}\n`);
      return 2;
    }
    throw error;
  }
}

if (isEntryPoint(import.meta.url)) runCommand(main);
