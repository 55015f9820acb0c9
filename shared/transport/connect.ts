import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { DialerHandshake } from './auth/handshake.js';
import { TransportError } from './errors.js';
import { resolveLinkOptions, wsOptions, type LinkOptions } from './link-options.js';
import type { Link } from './link/link.js';
import { WireEndpoint } from './link/wire-endpoint.js';
import { LogLimiter } from './log-limiter.js';
import type { ControlMessage } from './messages/define-messages.js';
import { formatHostPort, remoteAddressOf } from './remote-address.js';

export interface ConnectOptions<M extends ControlMessage> extends LinkOptions<M> {
  host: string;
  port: number;
  /** Deadline for TCP connect + WebSocket upgrade + handshake (default 10 s). */
  timeoutMs?: number;
}

/**
 * Between our own nodes the client masks with an all-zero key: ws then skips (un)masking on both
 * sides, the largest cost of ws on a fast link. The link is authenticated, not hidden; masking
 * only protects against cache poisoning by proxies, which are not on the path between nodes.
 */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Opens an authenticated link to a listener. Rejects with a TransportError saying what to do. */
export function connect<M extends ControlMessage>(options: ConnectOptions<M>): Promise<Link<M>> {
  const { host, port } = options;
  const label = formatHostPort(host, port);
  let resolved: ReturnType<typeof resolveLinkOptions<M>>;
  try {
    resolved = resolveLinkOptions(options, host, 'connect');
  } catch (error) {
    return Promise.reject(error);
  }
  const { limits, log, handshake } = resolved;
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;

  return new Promise<Link<M>>((resolve, reject) => {
    let settled = false;
    let socket: Socket | undefined;
    const fail = (error: TransportError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new TransportError('timeout', `connecting to ${label} timed out after ${timeoutMs} ms — is the listener up and reachable?`)),
      timeoutMs,
    );
    timer.unref();

    const ws = new WebSocket(`ws://${label}/ringpipe`, {
      ...wsOptions(limits),
      generateMask: zeroMask,
      handshakeTimeout: timeoutMs,
      followRedirects: false,
    });
    ws.on('upgrade', (response: IncomingMessage) => {
      socket = response.socket as Socket;
    });
    ws.on('unexpected-response', (_request, response: IncomingMessage) => {
      const busy = response.statusCode === 503 ? ' (too many pending connections; retry later)' : '';
      fail(new TransportError('connect', `${label} answered HTTP ${response.statusCode} ${response.statusMessage ?? ''}${busy} instead of a ringpipe link`));
    });
    const onEarlyError = (error: Error & { code?: string }): void => {
      const hint = error.code === 'ECONNREFUSED' ? ' — is a ringpipe node listening there?' : '';
      fail(new TransportError('connect', `cannot connect to ${label}: ${error.message}${hint}`, { cause: error }));
    };
    const onEarlyClose = (code: number): void =>
      fail(new TransportError('connect', `connection to ${label} closed before it opened (code ${code})`));
    ws.on('error', onEarlyError);
    ws.on('close', onEarlyClose);
    ws.once('open', () => {
      ws.off('error', onEarlyError);
      ws.off('close', onEarlyClose);
      if (settled || !socket) {
        if (!settled) fail(new TransportError('connect', `connection to ${label} opened without a socket`));
        return;
      }
      let attempt: DialerHandshake<M>;
      try {
        const endpoint = new WireEndpoint(ws, socket, remoteAddressOf(socket), limits, handshake.version, log, new LogLimiter(log), false);
        attempt = new DialerHandshake<M>(endpoint, handshake, label);
      } catch (error) {
        fail(new TransportError('connect', `cannot set up the link to ${label}: ${(error as Error).message}`, { cause: error }));
        return;
      }
      attempt.done.then(
        (link) => {
          if (settled) {
            link.close('connect timed out');
            return;
          }
          settled = true;
          clearTimeout(timer);
          log.info({ peer: link.peerLabel }, 'link authenticated');
          resolve(link);
        },
        (error: TransportError) => fail(error),
      );
    });
  });
}
