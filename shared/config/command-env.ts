import type { EnvFlag } from './env-flags.js';

/**
 * Which environment variable sets which flag of `npm run coordinator` / `npm run peer`. The
 * container image and the Kubernetes manifests configure the processes only through these (and
 * the variables in OTHER_ENV below), so a test checks that every RINGPIPE_* variable a manifest sets is
 * listed here for its role.
 *
 * `--fresh` has no variable on purpose: a container restarted with it would set its checkpoints
 * aside on every restart. `--coordinator` and `--no-mdns` read theirs in shared/discovery
 * (RINGPIPE_COORDINATOR, RINGPIPE_MDNS), the cluster secret in shared/transport, the dashboard
 * token in coordinator/dashboard.
 */
const SHARED_FLAGS: readonly EnvFlag[] = [
  { flag: 'cluster', env: 'RINGPIPE_CLUSTER', kind: 'text' },
  { flag: 'interface', env: 'RINGPIPE_INTERFACE', kind: 'text' },
  { flag: 'health-port', env: 'RINGPIPE_HEALTH_PORT', kind: 'port' },
  { flag: 'health-host', env: 'RINGPIPE_HEALTH_HOST', kind: 'text' },
  { flag: 'keep-running', env: 'RINGPIPE_KEEP_RUNNING', kind: 'switch' },
];

export const COORDINATOR_ENV_FLAGS: readonly EnvFlag[] = [
  { flag: 'job', env: 'RINGPIPE_JOB', kind: 'text' },
  { flag: 'port', env: 'RINGPIPE_PORT', kind: 'port' },
  { flag: 'host', env: 'RINGPIPE_HOST', kind: 'text' },
  { flag: 'run-dir', env: 'RINGPIPE_RUN_DIR', kind: 'text' },
  { flag: 'min-peers', env: 'RINGPIPE_MIN_PEERS', kind: 'count' },
  { flag: 'max-peers', env: 'RINGPIPE_MAX_PEERS', kind: 'count' },
  { flag: 'max-steps', env: 'RINGPIPE_MAX_STEPS', kind: 'count' },
  { flag: 'epochs', env: 'RINGPIPE_EPOCHS', kind: 'positive' },
  { flag: 'dashboard-port', env: 'RINGPIPE_DASHBOARD_PORT', kind: 'port' },
  { flag: 'dashboard-host', env: 'RINGPIPE_DASHBOARD_HOST', kind: 'text' },
  { flag: 'no-dashboard', env: 'RINGPIPE_NO_DASHBOARD', kind: 'switch' },
  ...SHARED_FLAGS,
];

export const PEER_ENV_FLAGS: readonly EnvFlag[] = [
  { flag: 'node-id', env: 'RINGPIPE_NODE_ID', kind: 'text' },
  { flag: 'backend', env: 'RINGPIPE_BACKEND', kind: 'text' },
  { flag: 'ring-host', env: 'RINGPIPE_RING_HOST', kind: 'text' },
  { flag: 'reconnect-timeout', env: 'RINGPIPE_RECONNECT_TIMEOUT', kind: 'positive' },
  ...SHARED_FLAGS,
];

/** Variables both commands read that stand for no flag of the table (or whose flag reads them itself). */
export const OTHER_ENV: readonly { env: string; flag?: string; meaning: string }[] = [
  { env: 'RINGPIPE_SECRET', meaning: 'the cluster secret itself' },
  { env: 'RINGPIPE_SECRET_FILE', flag: 'secret-file', meaning: 'a file holding the cluster secret (e.g. a mounted Kubernetes Secret); the flag wins' },
  { env: 'RINGPIPE_COORDINATOR', flag: 'coordinator', meaning: "peer: the coordinator's host:port (no mDNS); the flag wins" },
  { env: 'RINGPIPE_MDNS', flag: 'no-mdns', meaning: '0 switches mDNS off (as --no-mdns does)' },
  { env: 'RINGPIPE_DASHBOARD_TOKEN', flag: 'dashboard-token', meaning: "coordinator: the dashboard's token; the flag wins" },
  { env: 'RINGPIPE_LOG_LEVEL', meaning: 'log level (debug, info, warn, error)' },
  { env: 'RINGPIPE_LOG_FORMAT', meaning: 'json or pretty (json when stderr is not a terminal)' },
];
