import os from 'node:os';
import { browse, type DiscoveredNode } from '../../shared/discovery/index.js';
import { ASSUMED_LINK, ASSUMED_NETWORK_LATENCY_MS, LOCAL_HOST, type ClusterSpec, type LinkMeasurement, type PeerSpec } from './cluster.js';
import type { HostLoad } from './host-sharing.js';
import { IDLE_HOST } from './host-sharing.js';
import { parseBandwidth } from './units.js';

export interface DiscoverPeersOptions {
  clusterName: string;
  interface?: string;
  /** How long to listen for peers. */
  waitMs: number;
}

/** Peers of a cluster advertised on mDNS right now (their TXT records carry backend and free memory). */
export async function discoverPeers(options: DiscoverPeersOptions): Promise<DiscoveredNode[]> {
  const browser = await browse({ clusterName: options.clusterName, role: 'peer', ...(options.interface ? { interface: options.interface } : {}) });
  try {
    await new Promise((resolve) => setTimeout(resolve, options.waitMs));
    return browser.nodes;
  } finally {
    await browser.stop();
  }
}

function isThisMachine(address: string): boolean {
  if (address === '127.0.0.1' || address === '::1' || address.startsWith('127.')) return true;
  return Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address === address));
}

/**
 * The cluster as discovered: each peer's free memory from its advertisement, its host from the
 * address it answered from (peers on this machine share it, at the load measured here). Speeds are
 * not advertised: peers are taken as fast as this machine, and said to be.
 */
export function clusterFromDiscovery(nodes: readonly DiscoveredNode[], context: { backend: string; loopback: LinkMeasurement; localLoad: HostLoad; linkBytesPerSecond?: number; clusterName: string }): ClusterSpec {
  const assumptions = ['discovered peers are taken as fast as this machine (speed is not advertised); their free memory is what they advertised'];
  const link = context.linkBytesPerSecond ?? parseBandwidth(ASSUMED_LINK);
  const remote = nodes.some((n) => !isThisMachine(n.address));
  if (context.linkBytesPerSecond === undefined && remote) assumptions.push(`link bandwidth between machines not given: assumed ${ASSUMED_LINK} (give --link)`);
  const peers: PeerSpec[] = nodes.map((node) => {
    const local = isThisMachine(node.address);
    return {
      name: node.nodeId,
      memoryBytes: node.freeMemoryBytes,
      speed: 1,
      linkBytesPerSecond: local ? context.loopback.bytesPerSecond : link,
      host: local ? LOCAL_HOST : node.address,
      backend: node.backend,
    };
  });
  const others = [...new Set(peers.filter((p) => p.backend && p.backend !== context.backend).map((p) => `${p.name} (${p.backend})`))];
  if (others.length > 0) assumptions.push(`peers on another backend than this machine's ${context.backend}: ${others.join(', ')}: their speed may differ a lot`);
  const hosts: Record<string, HostLoad> = {};
  for (const peer of peers) {
    if (hosts[peer.host]) continue;
    hosts[peer.host] = peer.host === LOCAL_HOST ? context.localLoad : IDLE_HOST(peers.filter((p) => p.host === peer.host).length);
  }
  if (peers.some((p) => p.host !== LOCAL_HOST)) assumptions.push('other machines: one free core per peer, no other load');
  if (remote) assumptions.push(`${ASSUMED_NETWORK_LATENCY_MS} ms one-way latency between machines`);
  return { peers, hosts, loopback: context.loopback, networkLatencyMs: ASSUMED_NETWORK_LATENCY_MS, source: `${peers.length} peers of cluster "${context.clusterName}" discovered on mDNS`, assumptions };
}
