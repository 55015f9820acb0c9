import { ConfigError } from '../config/index.js';
import { startHealthServer, type HealthServer } from './health-server.js';
import type { HealthChecks } from './health-status.js';

/** `node:util` parseArgs options for the probes; spread them into a command's own options. */
export const healthFlagOptions = {
  'health-port': { type: 'string' },
  'health-host': { type: 'string' },
  'keep-running': { type: 'boolean' },
} as const;

export const HEALTH_FLAGS_HELP = `  --health-port N          serve /healthz (liveness) and /readyz (readiness) on this port
                           (0: any free port; the address is printed; a coordinator's
                           dashboard port serves them too)                            [off]
  --health-host ADDR       address the health endpoints bind                          [0.0.0.0]
  --keep-running           after a finished job, stay up (not ready) until SIGTERM instead
                           of exiting: for orchestrators that restart exited containers`;

/** Starts the probe server when `--health-port` (or its variable) is given; errors name the flag. */
export async function serveHealthFromFlags(values: { 'health-port'?: string | undefined; 'health-host'?: string | undefined }, checks: HealthChecks): Promise<HealthServer | undefined> {
  const text = values['health-port'];
  if (text === undefined) return undefined;
  const port = Number(text);
  if (text.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65_535) throw new ConfigError(`--health-port ${text}: expected a port number 0–65535`);
  const host = values['health-host'] ?? '0.0.0.0';
  try {
    return await startHealthServer({ host, port, checks });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ConfigError(`--health-port ${port} on ${host} is taken: choose another (0: any free port)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new ConfigError(`--health-host ${host} is not an address of this machine (${code})`);
    throw error;
  }
}
