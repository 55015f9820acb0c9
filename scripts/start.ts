/**
 * `npm start`: the main job on this machine as a real local cluster — a coordinator and N peers
 * (default 2), each its own process, talking over loopback with a fresh random cluster secret.
 * Prints the progress, the final test accuracy and the checkpoint; shuts everything down in order
 * on completion or Ctrl+C (the coordinator checkpoints first). Logs: <run folder>/logs/.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createProgress, type Progress } from '../shared/cli/progress.js';
import { createLogger } from '../shared/log/logger.js';
import { SECRET_ENV } from '../shared/transport/index.js';
import { EXIT_WITH_PARENT_ENV } from './local-cluster/exit-with-parent.js';
import { followMetrics } from './local-cluster/follow-metrics.js';
import { describeExit, ManagedChild } from './local-cluster/managed-child.js';
import { parseCommandLine, runCommand } from '../shared/cli/command.js';

const HELP = `Usage: npm start -- [flags]

Trains the job on a local cluster: a coordinator and N peer processes on this machine.

  --peers N        peer processes                                   [2]
  --job FILE       cluster job file (default: mlp on MNIST, 2 epochs)
  --max-steps N    stop after N steps
  --epochs N       passes over the training set
  --mode MODE      data-parallel, or pipeline (a 2-stage GPipe pipeline: one peer per stage)
  --run-dir DIR    checkpoints, metrics and logs          [runs/start-<time>]
  --help           this text

Ctrl+C stops cleanly: the coordinator saves a checkpoint, then every process exits. Resume that run
with: npm run coordinator -- --run-dir <run folder> (and npm run peer for the peers).`;

const SCRIPTS = path.join(import.meta.dirname);
const LISTEN_TIMEOUT_MS = 60_000;
const SHUTDOWN_GRACE_MS = 20_000;

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      peers: { type: 'string' },
      job: { type: 'string' },
      'max-steps': { type: 'string' },
      epochs: { type: 'string' },
      mode: { type: 'string' },
      'run-dir': { type: 'string' },
    },
    HELP,
  );
  if (parsed.exitCode !== undefined) return parsed.exitCode;
  const { values } = parsed;
  const peers = values.peers === undefined ? 2 : Number(values.peers);
  if (!Number.isInteger(peers) || peers < 1 || peers > 64) throw new Error(`--peers ${values.peers}: expected a whole number from 1 to 64`);
  const started = performance.now();
  const log = createLogger('start');
  const runDir = values['run-dir'] ?? path.join('runs', `start-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const logDir = path.join(runDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    [SECRET_ENV]: randomBytes(32).toString('hex'),
    [EXIT_WITH_PARENT_ENV]: '1',
    RINGPIPE_LOG_FORMAT: 'json',
  };

  let totalSteps = 0;
  let newestCheckpoint: string | undefined;
  const coordinator = new ManagedChild({
    name: 'coordinator',
    script: path.join(SCRIPTS, 'coordinator.ts'),
    args: [
      '--port', '0', '--host', '127.0.0.1', '--no-mdns', '--run-dir', runDir,
      '--min-peers', String(peers), '--max-peers', String(peers),
      ...(values.job ? ['--job', values.job] : []),
      ...(values['max-steps'] ? ['--max-steps', values['max-steps']] : []),
      ...(values.epochs ? ['--epochs', values.epochs] : []),
      ...(values.mode ? ['--mode', values.mode] : []),
    ],
    env,
    logFile: path.join(logDir, 'coordinator.log'),
    onLine(line) {
      const training = /^training (\d+) steps/.exec(line);
      const checkpoint = /^newest checkpoint (\S+)/.exec(line);
      if (training) totalSteps = Number(training[1]);
      else if (checkpoint) newestCheckpoint = checkpoint[1];
      else if (!line.startsWith('coordinator listening')) process.stdout.write(`${line}\n`);
    },
  });
  const children: ManagedChild[] = [coordinator];
  let interrupted = 0;
  const onInterrupt = (): void => {
    interrupted++;
    if (interrupted === 1) {
      process.stderr.write('\nstopping: the coordinator saves a checkpoint, then everything exits (Ctrl+C again to kill now)\n');
      coordinator.signal('SIGINT');
    } else {
      for (const child of children) child.signal('SIGKILL');
    }
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);

  let progress: Progress | undefined;
  let previous: { step: number; time: number } | undefined;
  const stopFollowing = followMetrics(path.join(runDir, 'metrics.jsonl'), (point) => {
    if (totalSteps === 0) return;
    progress ??= createProgress(totalSteps, 'cluster', (fields) => log.info(fields, 'progress'));
    const time = Date.parse(point.time);
    const speed = previous && time > previous.time ? Math.round(((point.step - previous.step) * point.samples * 1000) / (time - previous.time)) : '-';
    if (!previous || time - previous.time >= 1_000) previous = { step: point.step, time };
    progress.update(point.step, { loss: point.loss.toFixed(4), speed });
  });
  try {
    const [, host, port] = await coordinator.waitForLine(/^coordinator listening on (.+):(\d+) /, LISTEN_TIMEOUT_MS);
    process.stdout.write(`local cluster: coordinator on ${host}:${port} + ${peers} peer${peers === 1 ? '' : 's'} (logs in ${logDir})\n`);
    for (let i = 1; i <= peers; i++) {
      children.push(
        new ManagedChild({
          name: `peer-${i}`,
          script: path.join(SCRIPTS, 'peer.ts'),
          args: ['--coordinator', `127.0.0.1:${port}`, '--node-id', `peer-${i}`, '--no-mdns', '--reconnect-timeout', '30'],
          env,
          logFile: path.join(logDir, `peer-${i}.log`),
        }),
      );
    }
    const exit = await coordinator.exited;
    await stopFollowing();
    progress?.stop();
    progress = undefined;
    // The coordinator has told the peers to leave; give them a moment, then make sure.
    await Promise.all(children.slice(1).map((child) => Promise.race([child.exited, sleep(SHUTDOWN_GRACE_MS)]).then(() => child.stop('SIGTERM', 5_000))));
    const seconds = (performance.now() - started) / 1000;
    if (exit.code === 0) {
      process.stdout.write(`finished in ${seconds.toFixed(1)} s (wall clock, including start-up)\n`);
      return 0;
    }
    if (interrupted > 0) {
      process.stdout.write(`stopped after ${seconds.toFixed(1)} s${newestCheckpoint ? `; newest checkpoint ${newestCheckpoint}` : ''}\n`);
      if (newestCheckpoint) {
        process.stdout.write(`to continue from it: npm run coordinator -- --run-dir ${runDir} --min-peers ${peers} --max-peers ${peers}${values.job ? ` --job ${values.job}` : ''}${values['max-steps'] ? ` --max-steps ${values['max-steps']}` : ''}${values.epochs ? ` --epochs ${values.epochs}` : ''}, then npm run peer (${peers}×)\n`);
      }
      return 130;
    }
    const failedPeers = children.slice(1).filter((child) => child.exitInfo && child.exitInfo.code !== 0 && child.exitInfo.code !== null);
    for (const child of failedPeers) process.stderr.write(`${child.name} ${describeExit(child.exitInfo!)}; see ${path.join(logDir, `${child.name}.log`)}\n`);
    if (newestCheckpoint) process.stderr.write(`newest checkpoint ${newestCheckpoint}\n`);
    process.stderr.write(`the coordinator ${describeExit(exit)} after ${seconds.toFixed(1)} s; logs in ${logDir}\n`);
    return exit.code ?? 1;
  } finally {
    await stopFollowing();
    progress?.stop();
    await Promise.all(children.map((child) => child.stop('SIGTERM', 5_000)));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

runCommand(main);
