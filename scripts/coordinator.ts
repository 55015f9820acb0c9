/**
 * `npm run coordinator -- --job job.json`: runs a cluster job. Admits peers (mDNS or
 * --coordinator), starts when enough have joined, checkpoints, recovers from lost peers, resumes
 * from the newest checkpoint when restarted on the same job.
 */
import { rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { Coordinator } from '../coordinator/coordinator.js';
import { DASHBOARD_FLAGS_HELP, dashboardFlagOptions, dashboardSettingsFromFlags, startDashboard } from '../coordinator/dashboard/index.js';
import { loadClusterJob, numberFlag } from '../coordinator/job/load-cluster-job.js';
import { applyEnvFallbacks, COORDINATOR_ENV_FLAGS, envFlagsHelp } from '../shared/config/index.js';
import { DISCOVERY_FLAGS_HELP, discoveryFlagOptions, discoverySettingsFromFlags } from '../shared/discovery/index.js';
import { createProgress, type Progress } from '../shared/cli/progress.js';
import { coordinatorReadiness, eventLoopLiveness, HEALTH_FLAGS_HELP, healthFlagOptions, holdUntilStopped, serveHealthFromFlags } from '../shared/health/index.js';
import { createLogger, type Logger } from '../shared/log/logger.js';
import { exitWithParent } from './local-cluster/exit-with-parent.js';
import { parseCommandLine, runCommand, type CommandFlags } from '../shared/cli/command.js';
import { acquireRunFolderLock } from '../coordinator/state/run-folder-lock.js';
import type { ClusterJob } from '../coordinator/job/cluster-job.js';

const HELP = `Usage: npm run coordinator -- [--job FILE] [flags]

Runs a training job on the peers that join (start them with \`npm run peer\`).

  --job FILE               cluster job (JSON): training fields plus peers, checkpoint, mode
  --port N                 port peers connect to (0: any free port)               [7070]
  --host ADDR              address to bind  [0.0.0.0 with RINGPIPE_SECRET, else 127.0.0.1]
  --run-dir DIR            metrics, result and checkpoints               [runs/<job name>]
  --fresh                  set existing checkpoints aside and start from step 0
  --min-peers N, --max-peers N, --max-steps N, --epochs N    override job fields
  --mode MODE              data-parallel or pipeline (job field mode; see docs/pipeline.md)
${DISCOVERY_FLAGS_HELP}
${DASHBOARD_FLAGS_HELP}
  --secret-file PATH       file holding the cluster secret (env RINGPIPE_SECRET_FILE)
${HEALTH_FLAGS_HELP}
  --help                   this text

Restarted on the same job and run folder, it resumes from the newest good checkpoint.
Signals: Ctrl+C (SIGINT/SIGTERM) checkpoints and stops; SIGUSR2 checkpoints now.

${envFlagsHelp(COORDINATOR_ENV_FLAGS)}`;

const COORDINATOR_FLAGS = {
  job: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  cluster: { type: 'string' },
  'run-dir': { type: 'string' },
  fresh: { type: 'boolean' },
  'min-peers': { type: 'string' },
  'max-peers': { type: 'string' },
  'max-steps': { type: 'string' },
  epochs: { type: 'string' },
  mode: { type: 'string' },
  'secret-file': { type: 'string' },
  ...discoveryFlagOptions,
  ...healthFlagOptions,
  ...dashboardFlagOptions,
} as const;

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv, COORDINATOR_FLAGS, HELP);
  if (parsed.exitCode !== undefined) return parsed.exitCode;
  const values = applyEnvFallbacks(parsed.values, COORDINATOR_ENV_FLAGS);
  const log = createLogger('coordinator');
  const discovery = discoverySettingsFromFlags(values);
  const { job, name } = await loadClusterJob(values.job, {
    'peers.min': numberFlag(values['min-peers']),
    'peers.max': numberFlag(values['max-peers']),
    maxSteps: numberFlag(values['max-steps']),
    epochs: numberFlag(values.epochs),
    mode: values.mode,
  });
  const port = values.port === undefined ? 7070 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--port ${values.port}: expected a port number 0–65535`);
  // The dashboard token derives from the same cluster secret the coordinator uses.
  const dashboardSettings = dashboardSettingsFromFlags(values, values['secret-file'] ? { secretFile: values['secret-file'] } : {});
  const runDir = values['run-dir'] ?? path.join('runs', name);
  const checkpointDir = job.checkpoint.dir ?? path.join(runDir, 'checkpoints');
  // Before anything is written or set aside: one coordinator per run folder (and checkpoint folder).
  const locks = [await acquireRunFolderLock(runDir, { log })];
  if (!isInside(checkpointDir, runDir)) locks.push(await acquireRunFolderLock(checkpointDir, { log }));
  try {
    return await runCoordinator({ values, log, discovery, job, name, port, dashboardSettings, runDir, checkpointDir });
  } finally {
    for (const lock of locks) lock.release();
  }
}

interface CoordinatorRun {
  values: CommandFlags<typeof COORDINATOR_FLAGS>;
  log: Logger;
  discovery: ReturnType<typeof discoverySettingsFromFlags>;
  job: ClusterJob;
  name: string;
  port: number;
  dashboardSettings: ReturnType<typeof dashboardSettingsFromFlags>;
  runDir: string;
  checkpointDir: string;
}

async function runCoordinator({ values, log, discovery, job, name, port, dashboardSettings, runDir, checkpointDir }: CoordinatorRun): Promise<number> {
  if (values.fresh) await setAside(checkpointDir, path.join(runDir, 'metrics.jsonl'));

  const coordinator = new Coordinator({
    job,
    jobName: name,
    cluster: values.cluster ?? 'ringpipe',
    runDir,
    port,
    mdns: discovery.mdns,
    ...(values.host ? { host: values.host } : {}),
    ...(discovery.interface ? { interface: discovery.interface } : {}),
    ...(values['secret-file'] ? { secretFile: values['secret-file'] } : {}),
    logger: log,
  });
  // Signals are handled from here on, before anything is printed: a launcher that reads "listening"
  // may signal at once, and a signal with no handler would kill the process with its lock held.
  const stop = (signal: string) => void coordinator.stop(`${signal} received`);
  let signalsSeen = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signalsSeen === 1) return stop(signal);
    process.stderr.write(`${signal} again: exiting now, without waiting for the last checkpoint\n`);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The probes are served on the dashboard's port; on a port of their own only when asked (--health-port),
  // that server up before start(): loading checkpoints can take a while, and liveness must answer meanwhile.
  const checks = { live: eventLoopLiveness(), ready: () => coordinatorReadiness(coordinator.state) };
  const health = await serveHealthFromFlags(values, checks);
  if (health) process.stdout.write(`health endpoints on http://${health.host}:${health.port}/healthz and /readyz\n`);
  await coordinator.start();
  const dashboard = dashboardSettings ? await startDashboard(coordinator, dashboardSettings, log, checks) : undefined;
  if (dashboard) process.stdout.write(`dashboard ${dashboard.url}\n`);
  const { host, port: bound } = coordinator.address;
  process.stdout.write(`coordinator listening on ${host}:${bound} (cluster ${values.cluster ?? 'ringpipe'}, job ${name}, run folder ${runDir})\n`);
  process.on('SIGUSR2', () => {
    if (!coordinator.requestCheckpoint('SIGUSR2')) log.warn('no epoch is training: nothing to checkpoint');
  });
  exitWithParent(() => stop('launcher gone'));
  showProgress(coordinator, log);

  const result = await coordinator.run();
  // --keep-running: a finished coordinator stays up with its dashboard, which serves the probes.
  const hold = result.outcome === 'finished' && values['keep-running'] === true;
  if (!hold) await dashboard?.close();
  if (result.outcome === 'finished') {
    process.stdout.write(`${result.message}\n`);
    if (result.checkpoint) process.stdout.write(`checkpoint ${result.checkpoint}\nmodel ${result.model} (TensorFlow.js LayersModel: tf.loadLayersModel)\n`);
    if (hold) {
      process.stdout.write('keeping the process up (--keep-running) until SIGTERM\n');
      await holdUntilStopped();
      await dashboard?.close();
    }
    return 0;
  }
  process.stderr.write(`error: ${result.message}\n`);
  if (result.checkpoint) process.stdout.write(`newest checkpoint ${result.checkpoint} — run the same command again to resume from it\n`);
  return result.outcome === 'cancelled' ? 130 : 1;
}

/** One stdout line when training starts, then a progress bar (a log line every 50 steps off a terminal). */
function showProgress(coordinator: Coordinator, log: Logger): void {
  let progress: Progress | undefined;
  coordinator.state.on('change', (snapshot) => {
    if (progress || snapshot.totalSteps === 0) return;
    const peers = snapshot.topology.length;
    process.stdout.write(`training ${snapshot.totalSteps} steps (global batch ${coordinator.job.batchSize}) on ${peers} peer${peers === 1 ? '' : 's'}\n`);
    progress = createProgress(snapshot.totalSteps, 'cluster', (fields) => log.info(fields, 'progress'));
  });
  coordinator.state.on('loss', (point) => progress?.update(point.step, { loss: point.loss.toFixed(4), speed: Math.round(coordinator.state.snapshot().samplesPerSecond) }));
  coordinator.state.on('change', (snapshot) => {
    if (['finished', 'failed', 'stopped'].includes(snapshot.phase)) progress?.stop();
  });
}

/** --fresh: the old checkpoints and loss curve move aside (never deleted: they may still be wanted). */
async function setAside(...targets: string[]): Promise<void> {
  const suffix = `.set-aside-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  for (const target of targets) {
    const present = await stat(target).then(() => true, () => false);
    if (present) await rename(target, `${target}${suffix}`);
  }
}

runCommand(main);

function isInside(child: string, parent: string): boolean {
  const relative = path.relative(path.resolve(parent), path.resolve(child));
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
