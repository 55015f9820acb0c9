import { randomBytes } from 'node:crypto';

/**
 * Namespace names: `rp-<owner>-<lan>-<node>`.
 *   owner  the pid of the process that must clean up, or `keep` for LANs made by `cli.ts up`
 *   lan    4 random hex digits, so concurrent LANs of one process never collide
 *   node   `sw` (the namespace holding the bridge) or `h<i>` (host i)
 * Everything the harness ever creates matches NAMESPACE_PATTERN; nothing else is touched.
 */
export const NAMESPACE_PATTERN = /^rp-(\d+|keep)-([0-9a-f]{4})-(sw|h\d+|probe)$/;

export interface LanNames {
  id: string;
  switch: string;
  host(index: number): string;
}

export function lanNames(persistent: boolean, id = randomBytes(2).toString('hex')): LanNames {
  const owner = persistent ? 'keep' : String(process.pid);
  const prefix = `rp-${owner}-${id}`;
  return { id: `${owner}-${id}`, switch: `${prefix}-sw`, host: (index) => `${prefix}-h${index}` };
}

export interface ParsedNamespace {
  name: string;
  /** Owner pid, or undefined for persistent (`keep`) LANs. */
  ownerPid: number | undefined;
  /** `<owner>-<lan>`: what `cli.ts down` takes. */
  lanId: string;
}

export function parseNamespaceName(name: string): ParsedNamespace | undefined {
  const match = NAMESPACE_PATTERN.exec(name);
  if (!match) return undefined;
  const [, owner = '', lan = ''] = match;
  return { name, ownerPid: owner === 'keep' ? undefined : Number(owner), lanId: `${owner}-${lan}` };
}

/** Test-only addresses: 198.18.0.0/15 is reserved for network benchmarking (RFC 2544). */
export const LAN_SUBNET_PREFIX = '198.18.0';
export const LAN_PREFIX_LENGTH = 24;
export const MAX_HOSTS = 250;

export function hostAddress(index: number): string {
  return `${LAN_SUBNET_PREFIX}.${index + 1}`;
}
