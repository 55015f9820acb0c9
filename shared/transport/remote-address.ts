import type { Socket } from 'node:net';
import type { RemoteAddress } from './link/wire-endpoint.js';

/** The peer's address as seen on the socket, with IPv4-mapped IPv6 ('::ffff:1.2.3.4') unwrapped. */
export function remoteAddressOf(socket: Socket): RemoteAddress {
  const raw = socket.remoteAddress ?? 'unknown';
  return { address: raw.startsWith('::ffff:') ? raw.slice('::ffff:'.length) : raw, port: socket.remotePort ?? 0 };
}

/** host:port for a URL or a message, bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}
