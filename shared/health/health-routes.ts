import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HealthChecks, HealthStatus } from './health-status.js';

/** The paths Kubernetes probes (and people with curl) ask; the names follow the Kubernetes API server's own. */
export const LIVENESS_PATH = '/healthz';
export const READINESS_PATH = '/readyz';

/**
 * Answers `GET`/`HEAD /healthz` and `/readyz` and returns true; returns false for any other path so
 * a server that already exists (the coordinator's dashboard) can mount the probes in front of its
 * own routes. The answers carry no secrets (state names and reasons only), so they need no token:
 * the kubelet probes without one.
 */
export function handleHealthRequest(request: IncomingMessage, response: ServerResponse, checks: HealthChecks): boolean {
  const path = (request.url ?? '/').split('?', 1)[0];
  const check = path === LIVENESS_PATH ? 'live' : path === READINESS_PATH ? 'ready' : undefined;
  if (!check) return false;
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    respond(response, request.method, 405, { status: 'error', reason: `${request.method ?? '?'} is not supported: use GET` }, { allow: 'GET, HEAD' });
    return true;
  }
  let status: HealthStatus;
  try {
    status = checks[check]();
  } catch (error) {
    // A check that throws is a broken process, not a healthy one.
    status = { ok: false, reason: `the ${check} check failed: ${(error as Error).message}` };
  }
  respond(response, request.method, status.ok ? 200 : 503, { status: status.ok ? 'ok' : 'unavailable', check, reason: status.reason });
  return true;
}

function respond(response: ServerResponse, method: string | undefined, code: number, body: object, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(method === 'HEAD' ? undefined : text);
}
