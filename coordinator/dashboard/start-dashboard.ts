import type { Server } from 'node:http';
import os from 'node:os';
import type { HealthChecks } from '../../shared/health/index.js';
import type { Logger } from '../../shared/log/logger.js';
import { AccessPolicy } from './access/access-policy.js';
import type { DashboardSettings } from './dashboard-settings.js';
import { PrometheusMetrics } from './metrics/prometheus-metrics.js';
import { DashboardModel } from './model/dashboard-model.js';
import type { DashboardSource } from './model/dashboard-source.js';
import { createDashboardServer } from './server/dashboard-server.js';
import { LiveFeed } from './server/live-feed.js';
import { PageAssets } from './server/page-assets.js';
import { createLivePlanner } from './server/plan-route.js';

export interface Dashboard {
  /** The address to open, with the token in the fragment (the browser never sends that part). */
  url: string;
  host: string;
  port: number;
  model: DashboardModel;
  close(): Promise<void>;
}

/**
 * Serves the dashboard for a coordinator: binds (127.0.0.1 unless told otherwise), then keeps the
 * page, the live feed and /metrics current from the coordinator's state until `close()`.
 */
export async function startDashboard(source: DashboardSource, settings: DashboardSettings, log: Logger, health?: HealthChecks): Promise<Dashboard> {
  const model = new DashboardModel(source, log);
  const stopTimelines = source.onStageTimelines?.((timelines) => model.setPipelineTimelines(timelines));
  const metrics = new PrometheusMetrics(model);
  const feed = new LiveFeed(model, log);
  const server = createDashboardServer({ source, model, metrics, feed, assets: new PageAssets(), access: new AccessPolicy(settings.token.value, settings.exposed), log, planner: createLivePlanner(source), ...(health ? { health } : {}) });
  const closeAll = async (): Promise<void> => {
    stopTimelines?.();
    feed.close();
    metrics.close();
    model.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  let port: number;
  try {
    port = await listen(server, settings);
  } catch (error) {
    await closeAll();
    throw error;
  }
  const url = `http://${displayHost(settings.host)}:${port}/#token=${encodeURIComponent(settings.token.value)}`;
  log.info({ host: settings.host, port, exposed: settings.exposed, token: settings.token.origin }, 'dashboard listening');
  return { url, host: settings.host, port, model, close: closeAll };
}

async function listen(server: Server, settings: DashboardSettings): Promise<number> {
  try {
    return await listenOn(server, settings.host, settings.port);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Another coordinator on this machine has the default port: any free one will do, it is printed.
    if (code === 'EADDRINUSE' && !settings.portChosen) return listenOn(server, settings.host, 0);
    if (code === 'EADDRINUSE') throw new Error(`dashboard port ${settings.port} on ${settings.host} is taken: choose another --dashboard-port (0: any free port), or --no-dashboard`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new Error(`--dashboard-host ${settings.host} is not an address of this machine (${code})`);
    if (code === 'EACCES') throw new Error(`not allowed to listen on ${settings.host}:${settings.port} (ports below 1024 need privileges): choose another --dashboard-port`);
    throw error;
  }
}

function listenOn(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return os.hostname();
  return host.includes(':') ? `[${host}]` : host;
}
