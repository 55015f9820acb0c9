import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { NodeRole } from './service-type.js';

/** A DNS label holds at most 63 bytes. */
const MAX_LABEL = 63;

export interface AdvertisedNames {
  /** Service instance name (`<instance>._ringpipe._tcp.local`), unique per advertisement. */
  instance: string;
  /** Host name the SRV record points at and our A records are published under. */
  host: string;
}

/**
 * Builds names that cannot collide. Network namespaces (and containers) on one machine all
 * report the same `os.hostname()`, so neither the instance name nor the SRV target may be
 * derived from it alone: both carry a random suffix.
 */
export function uniqueNames(clusterName: string, role: NodeRole, nodeId: string): AdvertisedNames {
  const suffix = randomBytes(4).toString('hex');
  // bonjour-service turns dots into dashes in instance names; do it first so what we return
  // is exactly what goes on the wire.
  const readable = `${clusterName}-${role}-${nodeId}`.replace(/\./g, '-');
  const instance = `${readable.slice(0, MAX_LABEL - suffix.length - 1)}-${suffix}`;
  const hostLabel = os.hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '') || 'ringpipe';
  const host = `${hostLabel.slice(0, MAX_LABEL - suffix.length - 1)}-${suffix}.local`;
  return { instance, host };
}
