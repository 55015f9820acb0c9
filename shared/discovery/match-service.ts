import type { Service } from 'bonjour-service';
import { PROTOCOL_VERSION } from './protocol-version.js';
import type { NodeRole } from './service-type.js';
import { decodeTxt, TXT_KEYS, type NodeDescription } from './txt-record.js';

/** A ringpipe node found on the network. */
export interface DiscoveredNode extends NodeDescription {
  /** Full service name, `<instance>._ringpipe._tcp.local`: the node's identity on mDNS. */
  fqdn: string;
  instanceName: string;
  /**
   * Address to connect to: the one the mDNS answer came from. Published A records may be
   * missing or list addresses unreachable from here; the sender's address is reachable by
   * construction (it just reached us).
   */
  address: string;
  port: number;
  /** SRV target host name. */
  host: string;
  /** Addresses from the A records that came with the answer, for information only. */
  publishedAddresses: string[];
}

export interface MatchCriteria {
  clusterName: string;
  role?: NodeRole;
}

export type MatchResult =
  | { kind: 'match'; node: DiscoveredNode }
  | { kind: 'other-cluster'; clusterName: string }
  | { kind: 'other-role'; role: NodeRole }
  | { kind: 'other-protocol'; protocolVersion: string }
  | { kind: 'malformed'; problem: string };

/** Decides whether a bonjour-service answer is a node we are looking for. */
export function matchService(service: Service, criteria: MatchCriteria): MatchResult {
  const txt = (service.txt ?? {}) as Record<string, unknown>;
  // Version first: another protocol may lay out its TXT record differently.
  const version = txt[TXT_KEYS.protocolVersion];
  if (version === undefined) return { kind: 'malformed', problem: `TXT record has no "${TXT_KEYS.protocolVersion}" key` };
  if (version !== String(PROTOCOL_VERSION)) return { kind: 'other-protocol', protocolVersion: String(version) };
  const decoded = decodeTxt(txt);
  if (!decoded.ok) return { kind: 'malformed', problem: decoded.problem };
  const description = decoded.node;
  if (description.clusterName !== criteria.clusterName) return { kind: 'other-cluster', clusterName: description.clusterName };
  if (criteria.role && description.role !== criteria.role) return { kind: 'other-role', role: description.role };
  const address = service.referer?.address;
  if (!address) return { kind: 'malformed', problem: 'answer without a sender address' };
  return {
    kind: 'match',
    node: {
      ...description,
      fqdn: service.fqdn,
      instanceName: service.name,
      address,
      port: service.port,
      host: service.host,
      publishedAddresses: [...(service.addresses ?? [])],
    },
  };
}
