import os from 'node:os';
import type { MdnsInterface } from './network-interface.js';

/**
 * IPv4 addresses to publish as A records for our SRV target. bonjour-service publishes every
 * non-internal address by itself, and nothing at all in a namespace that only has `lo`, which
 * leaves standard DNS-SD browsers (avahi, python-zeroconf) unable to resolve the service. So we
 * always add the address of the interface mDNS runs on, and fall back to loopback when the
 * machine has nothing else: there, loopback is the only place the answer can have been heard.
 */
export function addressesToPublish(iface: MdnsInterface | undefined, table = os.networkInterfaces()): string[] {
  if (iface) return [iface.address];
  const external = Object.values(table)
    .flatMap((infos) => infos ?? [])
    .filter((i) => i.family === 'IPv4' && !i.internal)
    .map((i) => i.address);
  return external.length > 0 ? [...new Set(external)] : ['127.0.0.1'];
}
