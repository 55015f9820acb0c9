import { createLogger, type Logger } from '../log/logger.js';
import { DiscoveryConfigError } from './errors.js';
import { uniqueNames } from './instance-name.js';
import { openMdnsSession, type AddressRecord } from './mdns-session.js';
import { resolveInterface } from './network-interface.js';
import { PROTOCOL_VERSION } from './protocol-version.js';
import { addressesToPublish } from './published-addresses.js';
import { SERVICE_PROTOCOL, SERVICE_TYPE, type NodeRole } from './service-type.js';
import { backendSchema, clusterNameSchema, encodeTxt, nodeIdSchema, type NodeDescription } from './txt-record.js';
import { validated, validateFreeMemory, validatePort } from './validate-options.js';

export interface AdvertiseOptions {
  clusterName: string;
  role: NodeRole;
  nodeId: string;
  /** TCP port this node accepts connections on. */
  port: number;
  /** Tensor backend the node trains with. */
  backend: string;
  freeMemoryBytes: number;
  /** `--interface`: IPv4 address or interface name. Default: every interface. */
  interface?: string;
  logger?: Logger;
}

export interface Advertisement {
  /** Instance name on the wire (`<instance>._ringpipe._tcp.local`). */
  instanceName: string;
  /** SRV target host name (unique per advertisement). */
  host: string;
  /** Addresses in our A records. */
  addresses: string[];
  node: NodeDescription;
  /** Sends goodbye packets (TTL 0) so browsers see the node leave, then closes the socket. */
  stop(): Promise<void>;
}

const PUBLISH_TIMEOUT_MS = 5_000;
const GOODBYE_TIMEOUT_MS = 1_000;

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Publishes this node as `_ringpipe._tcp`. Resolves once the first announcement is on the wire.
 *
 * Probing is off (`probe: false`): probing exists to detect a name someone else already uses,
 * and our names carry 32 random bits, so it would only add ≈ 1 s to every start (measured
 * ≈ 0.1 s without it).
 */
export async function advertise(options: AdvertiseOptions): Promise<Advertisement> {
  const log = options.logger ?? createLogger('discovery');
  if (options.role !== 'coordinator' && options.role !== 'peer') throw new DiscoveryConfigError(`role ${JSON.stringify(options.role)} must be "coordinator" or "peer"`);
  const node: NodeDescription = {
    clusterName: validated('cluster name', clusterNameSchema, options.clusterName),
    role: options.role,
    nodeId: validated('node id', nodeIdSchema, options.nodeId),
    protocolVersion: PROTOCOL_VERSION,
    backend: validated('backend', backendSchema, options.backend),
    freeMemoryBytes: validateFreeMemory(options.freeMemoryBytes),
  };
  const port = validatePort(options.port);
  const iface = options.interface === undefined ? undefined : resolveInterface(options.interface);

  const session = await openMdnsSession(iface, log);
  const names = uniqueNames(node.clusterName, node.role, node.nodeId);
  const addresses = addressesToPublish(iface);
  const addressRecords: AddressRecord[] = addresses.map((data) => ({ name: names.host, type: 'A', ttl: 120, data }));
  // Registered before publishing, so the very first queries are already answered with them.
  session.responder.register(addressRecords);

  const service = session.bonjour.publish({
    name: names.instance,
    type: SERVICE_TYPE,
    protocol: SERVICE_PROTOCOL,
    port,
    host: names.host,
    txt: encodeTxt(node),
    probe: false,
    // Link-local IPv6 addresses without a scope id are unusable; the cluster speaks IPv4.
    disableIPv6: true,
  });
  const published = await withTimeout(
    new Promise<boolean>((resolve) => (service.published ? resolve(true) : service.once('up', () => resolve(true)))),
    PUBLISH_TIMEOUT_MS,
    () => false,
  );
  if (!published) {
    await session.close();
    throw new Error(`mDNS announcement of ${names.instance} was not sent within ${PUBLISH_TIMEOUT_MS} ms`);
  }
  log.info({ instance: names.instance, host: names.host, addresses, port, role: node.role, cluster: node.clusterName, interface: iface?.name ?? 'all' }, 'advertising on mDNS');

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      const sent = await withTimeout(
        new Promise<boolean>((resolve) => service.stop?.(() => resolve(true))),
        GOODBYE_TIMEOUT_MS,
        () => false,
      );
      if (!sent) log.warn({ instance: names.instance }, `mDNS goodbye not sent within ${GOODBYE_TIMEOUT_MS} ms; browsers will only notice when the record expires`);
      session.responder.unregister(addressRecords);
      await session.close();
      log.debug({ instance: names.instance }, 'mDNS advertisement stopped');
    })();
    return stopping;
  };
  return { instanceName: names.instance, host: names.host, addresses, node, stop };
}
