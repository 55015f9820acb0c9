import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { handleHealthRequest, type HealthChecks } from '../../../shared/health/index.js';
import type { Logger } from '../../../shared/log/logger.js';
import type { AccessPolicy, Verdict } from '../access/access-policy.js';
import type { PrometheusMetrics } from '../metrics/prometheus-metrics.js';
import type { DashboardModel } from '../model/dashboard-model.js';
import type { DashboardSource } from '../model/dashboard-source.js';
import type { LivePlanner } from '../../planner/live-plan.js';
import { streamCheckpoint } from './checkpoint-download.js';
import { isControlAction, runControl } from './controls.js';
import type { LiveFeed } from './live-feed.js';
import type { PageAssets } from './page-assets.js';
import { send, sendError, sendJson } from './responses.js';

export interface DashboardRoutes {
  source: DashboardSource;
  model: DashboardModel;
  metrics: PrometheusMetrics;
  feed: LiveFeed;
  assets: PageAssets;
  access: AccessPolicy;
  log: Logger;
  /** `/healthz` and `/readyz`, answered before the access policy: they carry no secrets, and the kubelet has no token. */
  health?: HealthChecks;
  /** `GET /api/plan`: the capacity planner on the connected peers. */
  planner?: LivePlanner;
}

const DOWNLOAD = /^\/api\/checkpoints\/(\d{1,12})\/download$/;
/** A control's request body (a distillation round's settings) is small. */
const MAX_BODY_BYTES = 16 * 1024;
const CONTROL = /^\/api\/control\/([a-z-]{1,32})$/;

/**
 * The dashboard's HTTP server: the page and its assets, `GET /api/view` (the page's JSON),
 * `GET /metrics` (Prometheus), `GET /api/plan` (the capacity planner on the live peers), checkpoint downloads, `POST /api/control/<action>`, and the `/live`
 * websocket. Every request passes the access policy first.
 */
export function createDashboardServer(routes: DashboardRoutes): Server {
  const server = createServer((request, response) => {
    handle(routes, request, response).catch((error: unknown) => {
      routes.log.warn({ err: error, url: request.url }, 'dashboard request failed');
      if (!response.headersSent) sendError(response, 500, (error as Error).message);
      else response.destroy();
    });
  });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = requestUrl(request);
    const verdict = url.pathname === '/live' ? routes.access.canOpenFeed(request, url) : ({ ok: false, status: 403, message: 'no websocket here' } as const);
    if (!verdict.ok) {
      socket.end(`HTTP/1.1 ${verdict.status} ${verdict.status === 401 ? 'Unauthorized' : 'Forbidden'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${verdict.message}\n`);
      return;
    }
    routes.feed.accept(request, socket, head);
  });
  // Idle keep-alive sockets must not hold the coordinator's exit.
  server.keepAliveTimeout = 5_000;
  return server;
}

async function handle(routes: DashboardRoutes, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const { access, model, source, log } = routes;
  if (routes.health && handleHealthRequest(request, response, routes.health)) return;
  const url = requestUrl(request);
  const path = url.pathname;
  const method = request.method ?? 'GET';
  const allowed = (verdict: Verdict): boolean => {
    if (!verdict.ok) sendError(response, verdict.status, verdict.message);
    return verdict.ok;
  };

  if (method === 'POST') {
    const control = CONTROL.exec(path);
    if (!control) return sendError(response, 404, `no such endpoint: POST ${path}`);
    if (!allowed(access.canControl(request, url))) return;
    const action = control[1]!;
    if (!isControlAction(action)) return sendError(response, 404, `unknown control '${action}' (pause, resume, checkpoint, distill)`);
    const body = await readJsonBody(request);
    if (!body.ok) return sendError(response, body.status, body.message);
    const result = await runControl(action, body.value, source, model, request.socket.remoteAddress ?? 'unknown', log);
    return sendJson(response, result.status, result.body);
  }
  if (method !== 'GET' && method !== 'HEAD') return sendError(response, 405, `${method} is not supported here`);

  const asset = routes.assets.get(path);
  if (asset) {
    if (!allowed(access.canLoadPage(request))) return;
    const { contentType, body } = await asset;
    return send(response, 200, contentType, body, path === '/' ? 'no-store' : 'no-cache');
  }
  if (path === '/api/view') {
    if (!allowed(access.canRead(request, url))) return;
    return sendJson(response, 200, { view: model.view(), points: model.points });
  }
  if (path === '/api/plan') {
    if (!allowed(access.canRead(request, url))) return;
    if (!routes.planner) return sendError(response, 404, 'this dashboard has no capacity planner');
    const answer = routes.planner.answer();
    // 202 while the model is being measured (ask again); 503 when no plan can be made now, saying why.
    return sendJson(response, answer.status === 'ready' ? 200 : answer.status === 'measuring' ? 202 : 503, answer);
  }
  if (path === '/metrics') {
    if (!allowed(access.canRead(request, url))) return;
    return send(response, 200, routes.metrics.contentType, await routes.metrics.render());
  }
  const download = DOWNLOAD.exec(path);
  if (download) {
    if (!allowed(access.canRead(request, url))) return;
    const step = Number(download[1]);
    const folder = model.checkpointFolder(step);
    if (!folder) return sendError(response, 404, `no checkpoint of step ${step} on the coordinator (it may have been pruned: only the newest ${source.job.checkpoint.keep} are kept)`);
    return streamCheckpoint(response, folder);
  }
  return sendError(response, 404, `no such page: ${path}`);
}

async function readJsonBody(request: IncomingMessage): Promise<{ ok: true; value: unknown } | { ok: false; status: 400 | 413; message: string }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > MAX_BODY_BYTES) return { ok: false, status: 413, message: `the request body is larger than ${MAX_BODY_BYTES} bytes` };
    chunks.push(chunk);
  }
  if (bytes === 0) return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
  } catch (error) {
    return { ok: false, status: 400, message: `the request body is not JSON: ${(error as Error).message}` };
  }
}

function requestUrl(request: IncomingMessage): URL {
  // The Host header is not trusted for anything but the policy's checks: parse against a fixed base.
  return new URL(request.url ?? '/', 'http://dashboard.invalid');
}
