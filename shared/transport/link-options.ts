import type { ServerOptions } from 'ws';
import { createLogger, type Logger } from '../log/logger.js';
import { loadSecret, requireSecretUnlessLoopback, SECRET_ENV, type SecretSource } from './auth/secret.js';
import type { HandshakeConfig } from './auth/handshake.js';
import { PROTOCOL_VERSION } from './constants.js';
import { TransportError } from './errors.js';
import { maxMessageBytes, resolveLimits, type TransportLimits } from './limits.js';
import type { ControlMessage, MessageRegistry } from './messages/define-messages.js';

/** What both ends of a link need: who we are, the secret, the message set and the limits. */
export interface LinkOptions<M extends ControlMessage> extends SecretSource {
  /** Cluster name; nodes of different clusters refuse each other. */
  cluster: string;
  /** This node's id (unique in the cluster), shown to peers and in their logs. */
  nodeId: string;
  /** This node's role, e.g. 'peer' or 'coordinator'; bound into the handshake proof. */
  role: string;
  /** The control messages this link may carry (see defineMessages). */
  messages: MessageRegistry<M>;
  limits?: Partial<TransportLimits>;
  logger?: Logger;
  /** Advertise another protocol version. Only for compatibility tests. */
  protocolVersion?: number;
}

export interface ResolvedLinkOptions<M extends ControlMessage> {
  handshake: HandshakeConfig<M>;
  limits: TransportLimits;
  log: Logger;
}

export function resolveLinkOptions<M extends ControlMessage>(
  options: LinkOptions<M>,
  host: string,
  action: 'listen' | 'connect',
): ResolvedLinkOptions<M> {
  checkName('cluster', options.cluster, 128);
  checkName('nodeId', options.nodeId, 128);
  checkName('role', options.role, 64);
  const limits = resolveLimits(options.limits);
  const log = options.logger ?? createLogger('transport');
  const secret = loadSecret(options);
  requireSecretUnlessLoopback(secret, host, action);
  if (secret === undefined) {
    log.warn(
      { host, action },
      `running WITHOUT a cluster secret on loopback: any local process can join — set ${SECRET_ENV} for anything beyond a single-machine test`,
    );
  }
  const version = options.protocolVersion ?? PROTOCOL_VERSION;
  return {
    limits,
    log,
    handshake: { cluster: options.cluster, nodeId: options.nodeId, role: options.role, secret, version, limits, messages: options.messages, log },
  };
}

/**
 * ws settings shared by both sides. ws only upgrades and sends: incoming frames are read by
 * link/ws-frame-parser.ts, which enforces the same payload cap.
 */
export function wsOptions(limits: TransportLimits): Pick<ServerOptions, 'perMessageDeflate' | 'maxPayload'> {
  return {
    perMessageDeflate: false,
    maxPayload: maxMessageBytes(limits),
  };
}

function checkName(field: string, value: unknown, max: number): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new TransportError('config', `${field} must be a non-empty string of at most ${max} characters, got ${JSON.stringify(value)}`);
  }
}
