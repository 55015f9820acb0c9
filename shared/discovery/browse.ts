import { EventEmitter } from 'node:events';
import type { Browser, Service } from 'bonjour-service';
import { createLogger, type Logger } from '../log/logger.js';
import { DiscoveryTimeoutError } from './errors.js';
import { matchService, type DiscoveredNode, type MatchCriteria } from './match-service.js';
import { openMdnsSession, type MdnsSession } from './mdns-session.js';
import { resolveInterface, type MdnsInterface } from './network-interface.js';
import { PROTOCOL_VERSION } from './protocol-version.js';
import { SERVICE_PROTOCOL, SERVICE_TYPE, type NodeRole } from './service-type.js';
import { clusterNameSchema } from './txt-record.js';
import { validated } from './validate-options.js';

export interface BrowseOptions {
  clusterName: string;
  /** Only report nodes with this role. */
  role?: NodeRole;
  /** `--interface`: IPv4 address or interface name. Default: every interface. */
  interface?: string;
  logger?: Logger;
}

export interface NodeBrowserEvents {
  /** A matching node appeared. */
  up: [node: DiscoveredNode];
  /** A node said goodbye (or changed so that it no longer matches). */
  down: [node: DiscoveredNode];
  /** A known node changed its port, host or TXT fields. */
  update: [node: DiscoveredNode, previous: DiscoveredNode];
}

// RFC 6762 §5.2 continuous querying: first repeat after 1 s, doubling; capped lower than the
// RFC's hour so a lost answer costs seconds, not minutes.
const FIRST_REQUERY_MS = 1_000;
const MAX_REQUERY_MS = 30_000;

/** Live view of the ringpipe nodes of one cluster. Create with `browse()`. */
export class NodeBrowser extends EventEmitter<NodeBrowserEvents> {
  private readonly known = new Map<string, DiscoveredNode>();
  private readonly warned = new Set<string>();
  private readonly ignoredClusters = new Set<string>();
  private requeryTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly session: MdnsSession,
    private readonly browser: Browser,
    private readonly criteria: MatchCriteria,
    readonly iface: MdnsInterface | undefined,
    private readonly log: Logger,
  ) {
    super();
    browser.on('up', (service) => this.consider(service));
    browser.on('txt-update', (service) => this.consider(service));
    browser.on('srv-update', (service) => this.consider(service));
    browser.on('down', (service) => this.forget(service.fqdn));
    this.scheduleRequery(FIRST_REQUERY_MS);
  }

  /** Matching nodes currently advertised. */
  get nodes(): DiscoveredNode[] {
    return [...this.known.values()];
  }

  /** Cluster names of ringpipe nodes seen and ignored because they belong elsewhere. */
  get otherClusters(): string[] {
    return [...this.ignoredClusters];
  }

  /** Resolves once at least `count` matching nodes are known; rejects after `timeoutMs`. */
  waitForNodes(count: number, timeoutMs: number): Promise<DiscoveredNode[]> {
    if (this.known.size >= count) return Promise.resolve(this.nodes);
    return new Promise((resolve, reject) => {
      const onUp = () => {
        if (this.known.size < count) return;
        clearTimeout(timer);
        this.off('up', onUp);
        resolve(this.nodes);
      };
      const timer = setTimeout(() => {
        this.off('up', onUp);
        reject(new DiscoveryTimeoutError(this.describeTimeout(count, timeoutMs)));
      }, timeoutMs);
      this.on('up', onUp);
    });
  }

  /** Explains a timeout in terms a user can act on. */
  describeTimeout(count: number, timeoutMs: number): string {
    const what = `${count} ${this.criteria.role ?? 'node'}${count === 1 ? '' : 's'}`;
    const where = this.iface ? `interface ${this.iface.name} (${this.iface.address})` : 'all interfaces';
    const others = this.ignoredClusters.size > 0 ? ` Saw ringpipe nodes of other clusters only: ${[...this.ignoredClusters].join(', ')}.` : '';
    return `Found ${this.known.size} of ${what} of cluster "${this.criteria.clusterName}" on mDNS (${where}) within ${timeoutMs} ms.${others} Check that they run with the same cluster name and that multicast reaches this machine, or give the coordinator's address with --coordinator host:port (or RINGPIPE_COORDINATOR).`;
  }

  /** Stops browsing and closes the socket. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearTimeout(this.requeryTimer);
      this.browser.stop();
      await this.session.close();
    })();
    return this.stopping;
  }

  private scheduleRequery(delayMs: number): void {
    this.requeryTimer = setTimeout(() => {
      this.browser.update();
      this.scheduleRequery(Math.min(delayMs * 2, MAX_REQUERY_MS));
    }, delayMs);
    // Browsing alone must not keep a process alive.
    this.requeryTimer.unref();
  }

  private consider(service: Service): void {
    const result = matchService(service, this.criteria);
    const previous = this.known.get(service.fqdn);
    if (result.kind === 'match') {
      this.known.set(service.fqdn, result.node);
      if (previous) this.emit('update', result.node, previous);
      else this.emit('up', result.node);
      return;
    }
    if (previous) this.forget(service.fqdn);
    this.reportIgnored(service, result);
  }

  private reportIgnored(service: Service, result: Exclude<ReturnType<typeof matchService>, { kind: 'match' }>): void {
    if (result.kind === 'other-cluster') {
      this.ignoredClusters.add(result.clusterName);
      return;
    }
    if (result.kind === 'other-role') return;
    // Protocol mismatches and malformed records point at a misconfigured cluster: say so once.
    if (this.warned.has(service.fqdn)) return;
    this.warned.add(service.fqdn);
    const from = service.referer?.address;
    if (result.kind === 'other-protocol') {
      this.log.warn({ instance: service.name, from, theirs: result.protocolVersion, ours: PROTOCOL_VERSION }, 'ignoring a ringpipe node that speaks another protocol version; upgrade one side');
    } else {
      this.log.warn({ instance: service.name, from, problem: result.problem }, 'ignoring a malformed ringpipe advertisement');
    }
  }

  private forget(fqdn: string): void {
    const node = this.known.get(fqdn);
    if (!node) return;
    this.known.delete(fqdn);
    this.emit('down', node);
  }
}

/** Starts browsing for `_ringpipe._tcp` nodes of one cluster; events arrive as they change. */
export async function browse(options: BrowseOptions): Promise<NodeBrowser> {
  const log = options.logger ?? createLogger('discovery');
  const clusterName = validated('cluster name', clusterNameSchema, options.clusterName);
  const iface = options.interface === undefined ? undefined : resolveInterface(options.interface);
  const session = await openMdnsSession(iface, log);
  const browser = session.bonjour.find({ type: SERVICE_TYPE, protocol: SERVICE_PROTOCOL });
  const criteria: MatchCriteria = options.role ? { clusterName, role: options.role } : { clusterName };
  return new NodeBrowser(session, browser, criteria, iface, log);
}
