import { Bonjour } from 'bonjour-service';
import type { Logger } from '../log/logger.js';
import { mdnsSocketOptions, type MdnsInterface } from './network-interface.js';

/** An address record as bonjour-service's responder stores it. */
export interface AddressRecord {
  name: string;
  type: 'A';
  ttl: number;
  data: string;
}

/**
 * The parts of bonjour-service's internal responder we rely on. Its public API has no way to
 * choose the published address records and no hook for socket errors, so we reach the
 * responder (`bonjour.server`) and its multicast-dns socket (`server.mdns`) directly. Checked
 * at run time: an incompatible bonjour-service fails here, loudly, not on the wire.
 */
interface ResponderInternals {
  register(records: AddressRecord[]): void;
  unregister(records: AddressRecord[]): void;
  mdns: NodeJS.EventEmitter & { destroy(cb?: () => void): void };
}

function responderOf(bonjour: Bonjour): ResponderInternals {
  const server = (bonjour as unknown as { server?: Partial<ResponderInternals> }).server;
  if (typeof server?.register !== 'function' || typeof server.unregister !== 'function' || typeof server.mdns?.on !== 'function') {
    throw new Error('bonjour-service internals changed (expected bonjour.server.register/unregister/mdns); check the bonjour-service version against shared/discovery/mdns-session.ts');
  }
  return server as ResponderInternals;
}

/** One bonjour-service instance (one UDP socket on port 5353) confined to the chosen interface. */
export interface MdnsSession {
  bonjour: Bonjour;
  responder: ResponderInternals;
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 5_000;

/** Opens the mDNS socket and waits until it is bound, so bind errors reach the caller. */
export async function openMdnsSession(iface: MdnsInterface | undefined, log: Logger): Promise<MdnsSession> {
  // bonjour-service calls this for failed sends while answering queries; its default throws.
  const onSendError = (err: unknown) => log.warn({ err }, 'mDNS send failed');
  // The constructor's type only lists service fields, but it passes the object on to multicast-dns.
  const bonjour = new Bonjour(mdnsSocketOptions(iface) as ConstructorParameters<typeof Bonjour>[0], onSendError);
  const responder = responderOf(bonjour);
  const { mdns } = responder;
  // Warnings are per-packet problems (undecodable packet, membership on a vanished interface).
  mdns.on('warning', (err: Error) => log.debug({ err: err.message }, 'mDNS warning'));

  const close = () => new Promise<void>((resolve) => bonjour.destroy(() => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`mDNS socket did not become ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      mdns.off('ready', ready);
      const where = iface ? `interface ${iface.name} (${iface.address})` : 'all interfaces';
      void close();
      reject(new Error(`Cannot open the mDNS socket (UDP 5353) on ${where}: ${err.message}`, { cause: err }));
    };
    const ready = () => {
      clearTimeout(timer);
      mdns.off('error', fail);
      // After start-up, errors must still never crash the process (multicast-dns emits 'error').
      mdns.on('error', (e: Error) => log.error({ err: e.message }, 'mDNS socket error'));
      resolve();
    };
    mdns.once('error', fail);
    mdns.once('ready', ready);
  });
  return { bonjour, responder, close };
}
