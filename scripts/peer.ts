/**
 * `npm run peer`: joins a cluster and trains whatever job its coordinator runs. Finds the
 * coordinator with mDNS, or --coordinator host:port / RINGPIPE_COORDINATOR.
 */
import { runPeer } from '../peer/main.js';
import { applyEnvFallbacks, envFlagsHelp, PEER_ENV_FLAGS } from '../shared/config/index.js';
import { isBackendFlag } from '../shared/engine/backend-candidates.js';
import { DISCOVERY_FLAGS_HELP, discoveryFlagOptions, discoverySettingsFromFlags } from '../shared/discovery/index.js';
import { eventLoopLiveness, HEALTH_FLAGS_HELP, healthFlagOptions, holdUntilStopped, PeerReadiness, serveHealthFromFlags } from '../shared/health/index.js';
import { createLogger } from '../shared/log/logger.js';
import { exitWithParent } from './local-cluster/exit-with-parent.js';
import { parseCommandLine, runCommand } from '../shared/cli/command.js';

const HELP = `Usage: npm run peer -- [flags]

Joins the coordinator of a cluster and trains with the other peers.

${DISCOVERY_FLAGS_HELP}
  --node-id ID             this peer's name in logs and topologies      [<host>-<pid>]
  --backend NAME           auto | node-gpu | node | wasm | cpu (overrides the job's)
  --ring-host ADDR         address for ring connections  [127.0.0.1 for a local coordinator, else 0.0.0.0]
  --reconnect-timeout S    give up when no coordinator is reachable this long      [120]
  --secret-file PATH       file holding the cluster secret (env RINGPIPE_SECRET_FILE)
${HEALTH_FLAGS_HELP}
  --help                   this text

Set RINGPIPE_SECRET to the cluster secret (the same on every machine).

${envFlagsHelp(PEER_ENV_FLAGS)}`;

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      cluster: { type: 'string' },
      'node-id': { type: 'string' },
      backend: { type: 'string' },
      'ring-host': { type: 'string' },
      'reconnect-timeout': { type: 'string' },
      'secret-file': { type: 'string' },
      ...discoveryFlagOptions,
      ...healthFlagOptions,
    },
    HELP,
  );
  if (parsed.exitCode !== undefined) return parsed.exitCode;
  const values = applyEnvFallbacks(parsed.values, PEER_ENV_FLAGS);
  const backend = values.backend;
  if (backend !== undefined && backend !== 'auto' && !isBackendFlag(backend)) throw new Error(`--backend ${backend}: choose auto, node-gpu, node, wasm or cpu`);
  const reconnect = values['reconnect-timeout'] === undefined ? 120 : Number(values['reconnect-timeout']);
  if (!Number.isFinite(reconnect) || reconnect <= 0) throw new Error(`--reconnect-timeout ${values['reconnect-timeout']}: expected seconds > 0`);
  const discovery = discoverySettingsFromFlags(values);
  const readiness = new PeerReadiness();
  const health = await serveHealthFromFlags(values, { live: eventLoopLiveness(), ready: () => readiness.status() });
  if (health) process.stdout.write(`health endpoints on http://${health.host}:${health.port}/healthz and /readyz\n`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort('SIGINT'));
  process.once('SIGTERM', () => controller.abort('SIGTERM'));
  exitWithParent(() => controller.abort('launcher gone'));
  const outcome = await runPeer({
    cluster: values.cluster ?? 'ringpipe',
    coordinator: discovery.coordinatorAddress(),
    reconnectTimeoutMs: reconnect * 1000,
    signal: controller.signal,
    logger: createLogger('peer'),
    readiness,
    ...(values['node-id'] ? { nodeId: values['node-id'] } : {}),
    ...(backend && backend !== 'auto' && isBackendFlag(backend) ? { backend } : {}),
    ...(values['ring-host'] ? { ringHost: values['ring-host'] } : {}),
    ...(discovery.interface ? { interface: discovery.interface } : {}),
    ...(values['secret-file'] ? { secretFile: values['secret-file'] } : {}),
  });
  readiness.left(outcome.reason);
  process.stdout.write(`peer ${outcome.success ? 'done' : 'stopped'}: ${outcome.reason}\n`);
  if (outcome.success && values['keep-running'] && !controller.signal.aborted) {
    process.stdout.write('keeping the process up (--keep-running) until SIGTERM\n');
    await holdUntilStopped();
  }
  return outcome.success ? 0 : 1;
}

runCommand(main);
