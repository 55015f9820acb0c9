import { createServer, type Server } from 'node:http';
import { handleHealthRequest } from './health-routes.js';
import type { HealthChecks } from './health-status.js';

export interface HealthServerOptions {
  /** Address to bind: the kubelet probes the pod's IP, so all interfaces by default. */
  host?: string;
  /** 0 picks a free port (read `port` afterwards). */
  port: number;
  checks: HealthChecks;
}

export interface HealthServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Probes are tiny and periodic: anything slower or bigger than this is not a probe. */
const REQUEST_TIMEOUT_MS = 5_000;
const MAX_CONNECTIONS = 32;

/**
 * A small HTTP server that answers only the probes, for processes without an HTTP server of their
 * own (the peer; the coordinator when its dashboard is off). It runs on the process's event loop
 * on purpose: a process whose loop is stuck cannot answer, and that is what a liveness probe
 * should see.
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const host = options.host ?? '0.0.0.0';
  const server: Server = createServer((request, response) => {
    if (handleHealthRequest(request, response, options.checks)) return;
    const text = `${JSON.stringify({ status: 'error', reason: `no such endpoint: ${request.url ?? ''} (try /healthz or /readyz)` })}\n`;
    response.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = REQUEST_TIMEOUT_MS;
  server.maxConnections = MAX_CONNECTIONS;
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : options.port);
    });
  });
  // Probe sockets must never keep a finished process alive.
  server.unref();
  return {
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
