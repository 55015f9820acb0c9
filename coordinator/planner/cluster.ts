import { z } from 'zod';
import { IDLE_HOST, type HostLoad } from './host-sharing.js';
import { parseBandwidth, parseBytes, UnitError } from './units.js';

/** A link as the planner models it: time = latency + bytes / bandwidth. */
export interface LinkMeasurement {
  bytesPerSecond: number;
  /** One-way latency (per ring step, per message). */
  latencyMs: number;
}

/** One peer as the planner sees it. */
export interface PeerSpec {
  name: string;
  /** Memory the peer may use for training. */
  memoryBytes: number;
  /** Compute speed relative to one idle core of this machine on the same model (1 = the same). */
  speed: number;
  /** Bytes per second of the peer's network link (loopback between peers of one host). */
  linkBytesPerSecond: number;
  /** Peers with the same host share its cores and talk over its loopback. */
  host: string;
  backend?: string;
}

export interface ClusterSpec {
  peers: PeerSpec[];
  /** Cores and competing load per host name. */
  hosts: Record<string, HostLoad>;
  /** The link between two peers of one host (measured here; needed only when peers share a host). */
  loopback?: LinkMeasurement;
  /** One-way latency between peers on different hosts. */
  networkLatencyMs: number;
  /** Where the peers came from (flags, file, mDNS). */
  source: string;
  /** What the planner had to assume, said in the plan. */
  assumptions: string[];
}

/** The host name of this machine in a cluster spec. */
export const LOCAL_HOST = 'this machine';

/** A LAN's one-way latency when nobody measured it (switched gigabit Ethernet: tens of µs to a few hundred). */
export const ASSUMED_NETWORK_LATENCY_MS = 0.2;
export const ASSUMED_LINK = '1Gbit';

/** The link between two peers: loopback on one host, else the slower of their two links. */
export function linkBetween(cluster: ClusterSpec, a: PeerSpec, b: PeerSpec): LinkMeasurement {
  if (a.host === b.host) {
    if (!cluster.loopback) throw new Error(`peers ${a.name} and ${b.name} share host ${a.host}, but no loopback link was measured for the plan`);
    return cluster.loopback;
  }
  return { bytesPerSecond: Math.min(a.linkBytesPerSecond, b.linkBytesPerSecond), latencyMs: cluster.networkLatencyMs };
}

/** Hosts of peers not described otherwise: idle, one core per peer on it. */
function defaultHosts(peers: PeerSpec[], known: Record<string, HostLoad>): Record<string, HostLoad> {
  const hosts: Record<string, HostLoad> = { ...known };
  for (const peer of peers) {
    if (hosts[peer.host]) continue;
    hosts[peer.host] = IDLE_HOST(peers.filter((p) => p.host === peer.host).length);
  }
  return hosts;
}

export interface UniformClusterOptions {
  count: number;
  memoryBytes: number;
  speed?: number;
  /** Undefined: assume ASSUMED_LINK and say so. */
  linkBytesPerSecond?: number;
}

/** `--peers N --peer-memory 2GiB --link 1Gbit`: N like peers, each on a host of its own. */
export function uniformCluster(options: UniformClusterOptions): ClusterSpec {
  const assumptions: string[] = [];
  const link = options.linkBytesPerSecond ?? parseBandwidth(ASSUMED_LINK);
  if (options.linkBytesPerSecond === undefined) assumptions.push(`link bandwidth not given: assumed ${ASSUMED_LINK} per peer (give --link)`);
  assumptions.push(`each peer on a machine of its own with one free core, ${options.speed ?? 1}× this machine's speed; ${ASSUMED_NETWORK_LATENCY_MS} ms one-way latency between machines`);
  const peers = Array.from({ length: options.count }, (_, i) => ({ name: `peer ${i}`, memoryBytes: options.memoryBytes, speed: options.speed ?? 1, linkBytesPerSecond: link, host: `host ${i}` }));
  return { peers, hosts: defaultHosts(peers, {}), networkLatencyMs: ASSUMED_NETWORK_LATENCY_MS, source: `${options.count} peers from flags`, assumptions };
}

/** `--peers N --local`: N peers on this machine, sharing its cores and free memory. */
export function localCluster(options: { count: number; freeMemoryBytes: number; load: HostLoad; loopback: LinkMeasurement }): ClusterSpec {
  const peers = Array.from({ length: options.count }, (_, i) => ({
    name: `local peer ${i}`,
    memoryBytes: options.freeMemoryBytes / options.count,
    speed: 1,
    linkBytesPerSecond: options.loopback.bytesPerSecond,
    host: LOCAL_HOST,
  }));
  return {
    peers,
    hosts: { [LOCAL_HOST]: options.load },
    loopback: options.loopback,
    networkLatencyMs: ASSUMED_NETWORK_LATENCY_MS,
    source: `${options.count} peers on this machine`,
    assumptions: [`the ${options.count} peers share this machine's free memory equally`],
  };
}

const sizeField = z.union([z.string(), z.number()]);
const peerEntrySchema = z
  .object({
    name: z.string().min(1).optional(),
    memory: sizeField,
    speed: z.number().positive().optional(),
    link: sizeField.optional(),
    host: z.string().min(1).optional(),
  })
  .strict();
const hostEntrySchema = z
  .object({
    cores: z.number().int().min(1),
    /** Other busy threads on the host, on average. */
    busy: z.number().min(0).optional(),
    /** Peers on this host are started from one session (Linux autogroup shares one group's CPU). */
    oneSession: z.boolean().optional(),
  })
  .strict();
const peerListSchema = z.array(peerEntrySchema).min(1);
const peersObjectSchema = z
  .object({
    peers: peerListSchema,
    hosts: z.record(z.string(), hostEntrySchema).optional(),
    latency: z.number().min(0).optional(),
  })
  .strict();
export const peersFileSchema = z.union([peerListSchema, peersObjectSchema]);
export type PeersFile = z.input<typeof peersFileSchema>;

export class PeersFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeersFileError';
  }
}

/**
 * A peers file: `[{ "memory": "2GiB", "link": "1Gbit", "speed": 1.5, "host": "box-a", "name": "a" }, …]`,
 * or `{ "peers": [...], "hosts": { "box-a": { "cores": 8, "busy": 0 } }, "latency": 0.2 }`. A host
 * named "local" (or LOCAL_HOST) is this machine, with its measured load and loopback link.
 */
export function clusterFromFile(json: unknown, where: string, context: { loopback?: LinkMeasurement; localLoad: HostLoad; defaultLinkBytesPerSecond?: number }): ClusterSpec {
  const file = parsePeersFile(json, where);
  const assumptions: string[] = [];
  let linkAssumed = false;
  const peers: PeerSpec[] = file.peers.map((entry, i) => {
    const at = `${where}: peers[${i}]`;
    try {
      const host = entry.host === 'local' || entry.host === LOCAL_HOST ? LOCAL_HOST : (entry.host ?? `host of ${entry.name ?? `peer ${i}`}`);
      let link = entry.link === undefined ? undefined : parseBandwidth(entry.link, `${at}.link`);
      if (link === undefined && host === LOCAL_HOST && context.loopback) link = context.loopback.bytesPerSecond;
      if (link === undefined && context.defaultLinkBytesPerSecond !== undefined) link = context.defaultLinkBytesPerSecond;
      if (link === undefined) {
        linkAssumed = true;
        link = parseBandwidth(ASSUMED_LINK);
      }
      return { name: entry.name ?? `peer ${i}`, memoryBytes: parseBytes(entry.memory, `${at}.memory`), speed: entry.speed ?? 1, linkBytesPerSecond: link, host };
    } catch (error) {
      if (error instanceof UnitError) throw new PeersFileError(error.message);
      throw error;
    }
  });
  if (linkAssumed) assumptions.push(`peers without a "link": assumed ${ASSUMED_LINK}`);
  const known: Record<string, HostLoad> = {};
  for (const [name, host] of Object.entries(file.hosts ?? {})) {
    known[name === 'local' ? LOCAL_HOST : name] = { cores: host.cores, competing: host.busy ?? 0, peersShareGroup: host.oneSession ?? false };
  }
  if (peers.some((p) => p.host === LOCAL_HOST) && !known[LOCAL_HOST]) known[LOCAL_HOST] = context.localLoad;
  const hosts = defaultHosts(peers, known);
  const undescribed = Object.keys(hosts).filter((h) => !known[h]);
  if (undescribed.length > 0) assumptions.push(`hosts without a "hosts" entry (${undescribed.join(', ')}): one free core per peer, no other load`);
  const latency = 'latency' in file && file.latency !== undefined ? file.latency : ASSUMED_NETWORK_LATENCY_MS;
  if (!('latency' in file) || file.latency === undefined) assumptions.push(`${ASSUMED_NETWORK_LATENCY_MS} ms one-way latency between machines`);
  return { peers, hosts, ...(context.loopback ? { loopback: context.loopback } : {}), networkLatencyMs: latency, source: `${peers.length} peers from ${where}`, assumptions };
}

type PeersFileContent = { peers: z.infer<typeof peerEntrySchema>[]; hosts?: Record<string, z.infer<typeof hostEntrySchema>>; latency?: number };

/** Checks a peers file's shape (and every size and rate in it), naming each problem by its place. */
export function parsePeersFile(json: unknown, where: string): PeersFileContent {
  // Checked against the one form it has, so problems are named by place rather than "no form matched".
  const parsed = Array.isArray(json) ? peerListSchema.safeParse(json) : peersObjectSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(top level)'}: ${i.message}`).join('\n');
    throw new PeersFileError(`invalid peers file ${where}:\n${problems}\nExpected e.g. [{"memory": "2GiB", "link": "1Gbit", "speed": 1, "host": "box-a"}]`);
  }
  const file = Array.isArray(parsed.data) ? { peers: parsed.data } : parsed.data;
  file.peers.forEach((entry, i) => {
    try {
      parseBytes(entry.memory, `${where}: peers[${i}].memory`);
      if (entry.link !== undefined) parseBandwidth(entry.link, `${where}: peers[${i}].link`);
    } catch (error) {
      if (error instanceof UnitError) throw new PeersFileError(error.message);
      throw error;
    }
  });
  return file;
}
