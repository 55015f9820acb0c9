import { createLogger, type Logger } from '../log/logger.js';
import { browse } from './browse.js';
import type { CoordinatorAddressChoice, CoordinatorSource } from './coordinator-address.js';
import { DiscoveryTimeoutError } from './errors.js';
import type { DiscoveredNode } from './match-service.js';

export interface DiscoverCoordinatorOptions {
  clusterName: string;
  /** `--interface`: IPv4 address or interface name. Default: every interface. */
  interface?: string;
  timeoutMs: number;
  logger?: Logger;
}

/** Finds the coordinator of a cluster with mDNS; rejects with DiscoveryTimeoutError if none answers. */
export async function discoverCoordinator(options: DiscoverCoordinatorOptions): Promise<DiscoveredNode> {
  const logger = options.logger ?? createLogger('discovery');
  // Both lines carry the timing operators (and the LAN test) need: how long finding took.
  const started = performance.now();
  logger.info({ cluster: options.clusterName, interface: options.interface ?? 'all', timeoutMs: options.timeoutMs }, 'looking for the coordinator on mDNS');
  const browser = await browse({ ...options, role: 'coordinator', logger });
  try {
    const [first, ...more] = await browser.waitForNodes(1, options.timeoutMs);
    if (!first) throw new DiscoveryTimeoutError(browser.describeTimeout(1, options.timeoutMs));
    const elapsedMs = Math.round(performance.now() - started);
    logger.info({ instance: first.instanceName, address: first.address, port: first.port, elapsedMs }, `found the coordinator on mDNS in ${elapsedMs} ms`);
    // Two coordinators in one cluster is a configuration mistake; take the first, but say so.
    if (more.length > 0) {
      logger.warn({ chosen: first.instanceName, others: more.map((n) => n.instanceName) }, `several coordinators advertise cluster "${options.clusterName}"; give each cluster its own name`);
    }
    return first;
  } finally {
    await browser.stop();
  }
}

/** The coordinator to connect to, and how we learned it. */
export interface CoordinatorLocation {
  host: string;
  port: number;
  source: CoordinatorSource | 'mdns';
  /** The advertisement, when found with mDNS. */
  node?: DiscoveredNode;
}

/** Turns a `resolveCoordinatorAddress()` choice into an address, browsing only when needed. */
export async function locateCoordinator(choice: CoordinatorAddressChoice, options: DiscoverCoordinatorOptions): Promise<CoordinatorLocation> {
  if (choice.kind === 'explicit') return { ...choice.endpoint, source: choice.source };
  const node = await discoverCoordinator(options);
  return { host: node.address, port: node.port, source: 'mdns', node };
}
