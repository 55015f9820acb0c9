import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { ListenerHandshake } from './auth/handshake.js';
import { TransportError } from './errors.js';
import { resolveLinkOptions, wsOptions, type LinkOptions } from './link-options.js';
import type { Link } from './link/link.js';
import { WireEndpoint } from './link/wire-endpoint.js';
import { LogLimiter } from './log-limiter.js';
import type { ControlMessage } from './messages/define-messages.js';
import { formatHostPort, remoteAddressOf } from './remote-address.js';

export interface Refused {
  /** The remote side, "nodeId (role) at address:port" when known. */
  peer: string;
  /** Why the handshake failed, in words, as logged. */
  reason: string;
}

export interface ListenOptions<M extends ControlMessage> extends LinkOptions<M> {
  /** Address to bind (default 127.0.0.1). Anything but loopback requires a cluster secret. */
  host?: string;
  /** Port to bind; 0 (the default) picks a free one, read it back from `server.port`. */
  port?: number;
  /** Called with every link that completed the handshake. */
  onLink(link: Link<M>): void;
  /** Called when a connection fails the handshake (wrong secret, cluster, version, timeout). */
  onRefused?(refused: Refused): void;
}

export interface LinkServer<M extends ControlMessage> {
  readonly host: string;
  readonly port: number;
  /** Authenticated links that are still open. */
  readonly links: ReadonlySet<Link<M>>;
  /** Connections accepted but not yet authenticated. */
  readonly pendingConnections: number;
  /** Stops accepting, closes every link and pending connection. */
  close(): Promise<void>;
}

/** Accepts ringpipe links on host:port. Resolves once the port is bound. */
export async function listen<M extends ControlMessage>(options: ListenOptions<M>): Promise<LinkServer<M>> {
  const host = options.host ?? '127.0.0.1';
  const resolved = resolveLinkOptions(options, host, 'listen');
  const listener = new LinkListener(options, resolved);
  await listener.bind(host, options.port ?? 0);
  return listener;
}

class LinkListener<M extends ControlMessage> implements LinkServer<M> {
  readonly links = new Set<Link<M>>();
  private readonly pending = new Map<Socket, NodeJS.Timeout>();
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly peerWarnings: LogLimiter;
  private boundHost = '';
  private boundPort = 0;
  private closing = false;

  constructor(
    private readonly options: ListenOptions<M>,
    private readonly resolved: ReturnType<typeof resolveLinkOptions<M>>,
  ) {
    const { limits, log } = resolved;
    this.peerWarnings = new LogLimiter(log);
    this.wss = new WebSocketServer({ noServer: true, clientTracking: false, ...wsOptions(limits) });
    this.http = createServer((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      response.end('This is a ringpipe link endpoint: only ringpipe nodes connect here (WebSocket).\n');
    });
    // Slow or half-sent HTTP requests are cut off by the same deadline as the handshake.
    this.http.headersTimeout = limits.authTimeoutMs;
    this.http.requestTimeout = limits.authTimeoutMs;
    this.http.on('connection', (socket: Socket) => this.onConnection(socket));
    this.http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(request, socket, head));
    this.http.on('clientError', (_error, socket: Socket) => socket.destroy());
  }

  get host(): string {
    return this.boundHost;
  }

  get port(): number {
    return this.boundPort;
  }

  get pendingConnections(): number {
    return this.pending.size;
  }

  bind(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error & { code?: string }): void => {
        const hint =
          error.code === 'EADDRINUSE'
            ? ' — another process holds this port: stop it, pick another port, or use port 0 for any free one'
            : error.code === 'EADDRNOTAVAIL'
              ? ' — this machine has no such address: use one of its own addresses, or 0.0.0.0 for all'
              : '';
        reject(new TransportError('config', `cannot listen on ${formatHostPort(host, port)}: ${error.message}${hint}`, { cause: error }));
      };
      this.http.once('error', onError);
      this.http.listen(port, host, () => {
        this.http.off('error', onError);
        this.http.on('error', (error) => this.resolved.log.error({ err: error }, 'listener error'));
        const address = this.http.address();
        this.boundHost = host;
        this.boundPort = typeof address === 'object' && address ? address.port : port;
        this.resolved.log.info({ host, port: this.boundPort, cluster: this.options.cluster }, 'listening for links');
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const link of this.links) link.close('listener shutting down');
    for (const socket of this.pending.keys()) socket.destroy();
    this.http.closeAllConnections();
    await closed;
  }

  /** Every TCP connection counts as pending until authenticated, and has the handshake deadline. */
  private onConnection(socket: Socket): void {
    const { limits } = this.resolved;
    if (this.closing || this.pending.size >= limits.maxPendingConnections) {
      this.peerWarnings.warn(
        { peer: remoteAddressOf(socket).address, pending: this.pending.size, limit: limits.maxPendingConnections },
        'dropping connection: too many unauthenticated connections',
      );
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => {
      this.peerWarnings.warn({ peer: remoteAddressOf(socket).address }, `dropping connection: not authenticated within ${limits.authTimeoutMs} ms`);
      socket.destroy();
    }, limits.authTimeoutMs);
    timer.unref();
    this.pending.set(socket, timer);
    socket.once('close', () => this.settle(socket));
  }

  private settle(socket: Socket): void {
    const timer = this.pending.get(socket);
    if (timer) clearTimeout(timer);
    this.pending.delete(socket);
  }

  private onUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    if (!this.pending.has(socket) || this.closing) {
      socket.destroy();
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const { limits, log, handshake } = this.resolved;
      let endpoint: WireEndpoint;
      let attempt: ListenerHandshake<M>;
      try {
        endpoint = new WireEndpoint(ws, socket, remoteAddressOf(socket), limits, handshake.version, log, this.peerWarnings, true);
        attempt = new ListenerHandshake<M>(endpoint, handshake);
      } catch (error) {
        // Our bug or an incompatible ws, never the peer's doing: drop this connection, keep serving.
        log.error({ err: error }, 'cannot set up an accepted connection');
        socket.destroy();
        return;
      }
      attempt.done.then(
        (link) => this.accept(socket, link),
        (error: Error) => {
          this.settle(socket);
          if (error instanceof TransportError && error.code === 'refused') {
            this.safely(() => this.options.onRefused?.({ peer: endpoint.remoteLabel, reason: error.message }));
          }
        },
      );
    });
  }

  private accept(socket: Socket, link: Link<M>): void {
    this.settle(socket);
    if (this.closing) {
      link.close('listener shutting down');
      return;
    }
    this.links.add(link);
    link.once('close', () => this.links.delete(link));
    this.resolved.log.info({ peer: link.peerLabel }, 'link authenticated');
    this.safely(() => this.options.onLink(link));
  }

  private safely(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.resolved.log.error({ err: error }, 'listener callback threw');
    }
  }
}
