import { isIPv4 } from 'node:net';
import os from 'node:os';
import { DiscoveryConfigError } from './errors.js';

/** The one IPv4 interface mDNS is confined to (`--interface`). */
export interface MdnsInterface {
  /** Interface name (`eth0`, `lo`), or the address itself when no interface holds it. */
  name: string;
  address: string;
}

type InterfaceTable = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

function describeInterfaces(table: InterfaceTable): string {
  const rows = Object.entries(table).flatMap(([name, infos]) =>
    (infos ?? []).filter((i) => i.family === 'IPv4').map((i) => `${name} (${i.address})`),
  );
  return rows.length > 0 ? rows.join(', ') : 'none';
}

/**
 * Resolves an `--interface` value, an IPv4 address or an interface name, to the interface's
 * IPv4 address. mDNS here is IPv4 only (multicast-dns `udp4`), so IPv6-only interfaces are refused.
 */
export function resolveInterface(value: string, table: InterfaceTable = os.networkInterfaces()): MdnsInterface {
  const wanted = value.trim();
  if (wanted === '') throw new DiscoveryConfigError('--interface needs an IPv4 address or an interface name');
  if (isIPv4(wanted)) {
    for (const [name, infos] of Object.entries(table)) {
      if (infos?.some((i) => i.family === 'IPv4' && i.address === wanted)) return { name, address: wanted };
    }
    throw new DiscoveryConfigError(
      `--interface ${wanted}: no local interface has this address. IPv4 interfaces here: ${describeInterfaces(table)}`,
    );
  }
  const infos = table[wanted];
  if (!infos) {
    throw new DiscoveryConfigError(
      `--interface ${wanted}: no such interface (nor an IPv4 address). IPv4 interfaces here: ${describeInterfaces(table)}`,
    );
  }
  const ipv4 = infos.find((i) => i.family === 'IPv4');
  if (!ipv4) throw new DiscoveryConfigError(`--interface ${wanted}: the interface has no IPv4 address; mDNS discovery needs one`);
  return { name: wanted, address: ipv4.address };
}

/** Socket options for bonjour-service / multicast-dns. */
export interface MdnsSocketOptions {
  interface?: string;
  bind?: string;
}

/**
 * Maps an interface choice onto multicast-dns options. `interface` picks the membership and the
 * outgoing multicast interface; on its own it would also bind the socket to that unicast
 * address, where multicast datagrams (addressed to 224.0.0.251) never arrive. Binding the
 * wildcard address keeps reception working while sending stays on the chosen interface.
 * Without a choice, multicast-dns joins every interface and sends by the routing table.
 */
export function mdnsSocketOptions(iface: MdnsInterface | undefined): MdnsSocketOptions {
  return iface ? { interface: iface.address, bind: '0.0.0.0' } : {};
}

/** Loopback, for tests and single-machine clusters: mDNS never leaves the machine. */
export const LOOPBACK_INTERFACE: MdnsInterface = { name: 'lo', address: '127.0.0.1' };
