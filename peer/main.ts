import os from 'node:os';
import { COORDINATOR_ROLE, clusterMessages, PEER_ROLE, type ClusterMessage } from '../coordinator/protocol/cluster-messages.js';
import { locateCoordinator, type CoordinatorAddressChoice, type CoordinatorLocation } from '../shared/discovery/index.js';
import type { BackendFlag } from '../shared/engine/backend-candidates.js';
import type { PeerReadinessReporter } from '../shared/health/index.js';
import { createLogger, type Logger } from '../shared/log/logger.js';
import { connect, isLoopbackHost, secretSourceOf, TransportError, type SecretSource } from '../shared/transport/index.js';
import { PeerResources } from './session/peer-resources.js';
import { PeerSession, type SessionEnd } from './session/peer-session.js';

/**
 * The peer process: find the coordinator, connect, take part in the job it runs. When the
 * coordinator goes away the peer stops training cleanly and keeps trying to reach it (a restarted
 * coordinator resumes from its newest checkpoint) until `reconnectTimeoutMs` has passed.
 */
export interface PeerOptions extends SecretSource {
  cluster: string;
  nodeId?: string;
  /** How to find the coordinator: an explicit address or mDNS. */
  coordinator: CoordinatorAddressChoice;
  /** `--interface` for mDNS browsing. */
  interface?: string;
  backend?: BackendFlag;
  /** Address the ring listener binds; default: loopback when the coordinator is on loopback, else all interfaces. */
  ringHost?: string;
  /** Give up when no coordinator could be reached for this long (first contact or after losing it). */
  reconnectTimeoutMs?: number;
  /** Aborting leaves the job cleanly (the step in progress ends first) and resolves runPeer. */
  signal?: AbortSignal;
  logger?: Logger;
  /** Told when this peer finds or loses its coordinator and joins or leaves epochs (its readiness probe). */
  readiness?: PeerReadinessReporter;
}

export interface PeerOutcome {
  success: boolean;
  reason: string;
}

const DEFAULT_RECONNECT_TIMEOUT_MS = 120_000;
const RETRY_DELAY_MS = 1_000;

export async function runPeer(options: PeerOptions): Promise<PeerOutcome> {
  const log = options.logger ?? createLogger('peer');
  const nodeId = options.nodeId ?? defaultNodeId();
  const resources = new PeerResources(log, options.backend);
  const reconnectTimeoutMs = options.reconnectTimeoutMs ?? DEFAULT_RECONNECT_TIMEOUT_MS;
  const stopped = (): PeerOutcome => ({ success: false, reason: `stopped: ${String(options.signal?.reason ?? 'signal')}` });
  try {
    let lastContact = Date.now();
    let lastProblem = 'no attempt yet';
    for (;;) {
      if (options.signal?.aborted) return stopped();
      const session = await openSession(options, nodeId, resources, log).catch((error: unknown) => {
        lastProblem = (error as Error).message;
        if (error instanceof TransportError && error.code === 'refused') throw error;
        return undefined;
      });
      if (!session) {
        options.readiness?.searching(lastProblem);
        if (Date.now() - lastContact > reconnectTimeoutMs) {
          return { success: false, reason: `no coordinator reachable for ${Math.round(reconnectTimeoutMs / 1000)} s (last problem: ${lastProblem})` };
        }
        log.debug({ problem: lastProblem }, 'coordinator not reachable yet; retrying');
        await sleep(RETRY_DELAY_MS, options.signal);
        continue;
      }
      const leave = (): void => session.close('this peer is stopping');
      options.signal?.addEventListener('abort', leave, { once: true });
      const end: SessionEnd = await session.ended;
      options.signal?.removeEventListener('abort', leave);
      if (options.signal?.aborted) return stopped();
      lastContact = Date.now();
      if (end.kind === 'shutdown') return { success: end.success, reason: end.reason };
      if (end.kind === 'refused' && !end.retry) return { success: false, reason: `the coordinator refused this peer: ${end.reason}` };
      options.readiness?.searching(end.reason);
      log.warn({ reason: end.reason }, end.kind === 'lost' ? 'lost the coordinator; training stopped, reconnecting' : 'refused for now; retrying');
      await sleep(RETRY_DELAY_MS, options.signal);
    }
  } finally {
    resources.dispose();
  }
}

async function openSession(options: PeerOptions, nodeId: string, resources: PeerResources, log: Logger): Promise<PeerSession> {
  const location: CoordinatorLocation = await locateCoordinator(options.coordinator, {
    clusterName: options.cluster,
    timeoutMs: 5_000,
    logger: log,
    ...(options.interface ? { interface: options.interface } : {}),
  });
  const link = await connect<ClusterMessage>({
    ...secretSourceOf(options),
    host: location.host,
    port: location.port,
    cluster: options.cluster,
    nodeId,
    role: PEER_ROLE,
    messages: clusterMessages,
    logger: log,
    timeoutMs: 10_000,
  });
  if (link.peer.role !== COORDINATOR_ROLE) {
    link.close('expected a coordinator');
    throw new Error(`${location.host}:${location.port} is a ${link.peer.role}, not a coordinator`);
  }
  log.info({ coordinator: link.peerLabel, via: location.source }, 'connected to the coordinator');
  options.readiness?.connected(link.peerLabel);
  const ringHost = options.ringHost ?? (isLoopbackHost(location.host) ? '127.0.0.1' : '0.0.0.0');
  return new PeerSession(link, {
    ...secretSourceOf(options),
    cluster: options.cluster,
    nodeId,
    ringHost,
    resources,
    log,
    ...(options.readiness ? { readiness: options.readiness } : {}),
  });
}

/** Unique per process and readable in logs: host name plus pid. */
function defaultNodeId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 40) || 'peer';
  return `${host}-${process.pid}`;
}


function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
