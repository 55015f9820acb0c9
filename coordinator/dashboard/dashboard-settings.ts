import { isLoopbackHost, type SecretSource } from '../../shared/transport/index.js';
import { DASHBOARD_TOKEN_ENV, resolveDashboardToken, type DashboardToken } from './access/dashboard-token.js';

export const DEFAULT_DASHBOARD_PORT = 7080;

/** `node:util` parseArgs options for the dashboard; spread them into the coordinator's own. */
export const dashboardFlagOptions = {
  'dashboard-port': { type: 'string' },
  'dashboard-host': { type: 'string' },
  'dashboard-token': { type: 'string' },
  'no-dashboard': { type: 'boolean' },
} as const;

export const DASHBOARD_FLAGS_HELP = `  --dashboard-port N       web dashboard + /metrics port (0: any free port)       [${DEFAULT_DASHBOARD_PORT}]
  --dashboard-host ADDR    address the dashboard binds; anything but loopback
                           exposes it and then every request needs the token     [127.0.0.1]
  --dashboard-token TOKEN  token for the controls (and for everything when exposed)
                           (env ${DASHBOARD_TOKEN_ENV}) [derived from the cluster secret, else random]
  --no-dashboard           no dashboard`;

export interface DashboardSettings {
  host: string;
  port: number;
  /** False when the port is the default: a busy default falls back to any free port. */
  portChosen: boolean;
  token: DashboardToken;
  /** Reachable from other machines: every request then needs the token. */
  exposed: boolean;
}

/** Validated settings, or undefined for --no-dashboard. Errors name the flag. */
export function dashboardSettingsFromFlags(
  values: { 'dashboard-port'?: string | undefined; 'dashboard-host'?: string | undefined; 'dashboard-token'?: string | undefined; 'no-dashboard'?: boolean | undefined },
  secretSource: SecretSource = {},
): DashboardSettings | undefined {
  if (values['no-dashboard']) return undefined;
  const portText = values['dashboard-port'];
  const port = portText === undefined ? DEFAULT_DASHBOARD_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--dashboard-port ${portText}: expected a port number 0–65535`);
  const host = values['dashboard-host'] ?? '127.0.0.1';
  if (host.trim() === '') throw new Error('--dashboard-host: expected an address, e.g. 0.0.0.0 or 192.168.1.20');
  return { host, port, portChosen: portText !== undefined, token: resolveDashboardToken(values['dashboard-token'], secretSource), exposed: !isLoopbackHost(host) };
}
