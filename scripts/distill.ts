/**
 * `npm run distill -- --teacher MODEL --student NAME`: knowledge-distillation rounds on a local
 * cluster — the coordinator in this process, N peer processes — or on peers that join from other
 * machines (--peers 0). Prints each round's table (teacher, distilled student, student alone) and
 * saves it as report.json in the round's folder.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Coordinator } from '../coordinator/coordinator.js';
import { formatReportTable, type RoundReport } from '../coordinator/distillation/round-report.js';
import { DISTILL_DEFAULTS } from '../coordinator/distillation/round-defaults.js';
import { parseRoundSpec, PREVIOUS_ROUND, type RoundSpecInput } from '../coordinator/distillation/round-spec.js';
import { parseClusterJob } from '../coordinator/job/cluster-job.js';
import { DISCOVERY_FLAGS_HELP, discoveryFlagOptions, discoverySettingsFromFlags } from '../shared/discovery/index.js';
import { isBackendFlag } from '../shared/engine/backend-candidates.js';
import { JobValidationError } from '../shared/job/schema.js';
import { createLogger } from '../shared/log/logger.js';
import { describeZoo } from '../shared/models/zoo.js';
import { SECRET_ENV } from '../shared/transport/index.js';
import { EXIT_WITH_PARENT_ENV } from './local-cluster/exit-with-parent.js';
import { ManagedChild } from './local-cluster/managed-child.js';
import { parseCommandLine, runCommand } from '../shared/cli/command.js';

const D = DISTILL_DEFAULTS;
const HELP = `Usage: npm run distill -- --teacher MODEL [--student MODEL[,MODEL…]] [flags]

Distils a teacher into a student on a cluster: peers compute the teacher's top-k soft targets for
their shards, the coordinator keeps and serves them, the student is trained data-parallel on them;
the same student is also trained alone on hard labels with the same budget, for comparison. The
defaults are the settings \`npm run bench:distill\` measures (chosen on a validation split). A peer
lost mid-round does not fail it: its work goes to the others, who continue from their last
committed step.

  --teacher MODEL          model.json, its folder, a checkpoint or run folder of this cluster,
                           or "previous" (the student of the newest round in --run-dir)
  --student LIST           zoo model or model file; several (comma-separated) chain rounds: each
                           round's student is the next round's teacher                 [${D.student}]
  --spec FILE              round settings as JSON (the flags below override its fields)
  --top-k K                teacher logits kept per sample                              [${D.topK}]
  --temperature T          softmax temperature of the soft targets                     [${D.temperature}]
  --alpha A                weight of the soft term (1 − A: hard labels)                [${D.alpha}]
  --transfer-samples N     train the students on the first N training samples (0: all) [${D.transferSamples}]
  --steps N                student budget: optimizer steps of one batch each           [${D.steps}]
  --epochs E               …or instead E passes over the transfer set
  --max-steps N            …either capped at N optimizer steps (0: no cap)             [0]
  --batch-size B, --optimizer NAME, --lr X, --seed S       [${D.batchSize}, ${D.optimizer}, ${D.learningRate}, ${D.seed}]
  --no-baseline            skip the student trained alone
  --inference-batch B      samples per call when timing inference                      [100]
  --inference-samples N    test samples timed (after one untimed pass)                 [500]
  --peers N                local peer processes; 0: wait for \`npm run peer\` from other machines [2]
  --min-peers N            fewest peers a round runs on; below it, wait --wait-seconds, then fail [1]
  --wait-seconds S         after losing peers, how long to wait for --min-peers again   [120]
  --backend NAME           the peers' tensor backend: auto | node-gpu | node | wasm | cpu
  --run-dir DIR            rounds go to DIR/distill/round-NNN/                [runs/distill]
  --report FILE            also write all reports of this run as one JSON file
  --port N, --host ADDR    where peers connect (0: any free port)  [7070 with --peers 0, else 0]
${DISCOVERY_FLAGS_HELP}
  --help                   this text

Zoo models:
${describeZoo()}`;

const SCRIPTS = import.meta.dirname;
const LISTEN_HOST = '127.0.0.1';

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      teacher: { type: 'string' },
      student: { type: 'string' },
      spec: { type: 'string' },
      'top-k': { type: 'string' },
      temperature: { type: 'string' },
      alpha: { type: 'string' },
      epochs: { type: 'string' },
      'max-steps': { type: 'string' },
      steps: { type: 'string' },
      'min-peers': { type: 'string' },
      'wait-seconds': { type: 'string' },
      'transfer-samples': { type: 'string' },
      'batch-size': { type: 'string' },
      optimizer: { type: 'string' },
      lr: { type: 'string' },
      seed: { type: 'string' },
      'no-baseline': { type: 'boolean' },
      'inference-batch': { type: 'string' },
      'inference-samples': { type: 'string' },
      peers: { type: 'string' },
      backend: { type: 'string' },
      'run-dir': { type: 'string' },
      report: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      cluster: { type: 'string' },
      ...discoveryFlagOptions,
    },
    HELP,
  );
  if (parsed.exitCode !== undefined) return parsed.exitCode;
  const { values } = parsed;
  const fromFile: Record<string, unknown> = values.spec ? await readSpecFile(values.spec) : {};
  const students = (values.student ?? (typeof fromFile.student === 'string' ? fromFile.student : D.student)).split(',').map((s) => s.trim()).filter(Boolean);
  if (students.length === 0) throw new Error(`--student: give a zoo model such as ${D.student}, or a model file; see --help`);
  const teacher = values.teacher ?? fromFile.teacher;
  if (typeof teacher !== 'string' || teacher === '') {
    throw new Error('--teacher is required: a trained model.json, its folder, a checkpoint or run folder, or "previous". The benchmark\'s teacher is made by `npm run bench:distill` (runs/bench-distill/teacher/model); see --help');
  }
  const localPeers = values.peers === undefined ? 2 : Number(values.peers);
  if (!Number.isInteger(localPeers) || localPeers < 0 || localPeers > 64) throw new Error(`--peers ${values.peers}: expected a whole number from 0 to 64`);
  const backend = values.backend;
  if (backend !== undefined && backend !== 'auto' && !isBackendFlag(backend)) throw new Error(`--backend ${backend}: choose auto, node-gpu, node, wasm or cpu`);

  const base: Record<string, unknown> = { ...fromFile, teacher };
  const set = (field: string, raw: string | undefined, asNumber = true): void => {
    if (raw !== undefined) base[field] = asNumber && raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  };
  set('topK', values['top-k']);
  set('temperature', values.temperature);
  set('alpha', values.alpha);
  set('epochs', values.epochs);
  set('steps', values.steps);
  set('maxSteps', values['max-steps']);
  set('transferSamples', values['transfer-samples']);
  set('batchSize', values['batch-size']);
  set('optimizer', values.optimizer, false);
  set('learningRate', values.lr);
  set('seed', values.seed);
  set('inferenceBatch', values['inference-batch']);
  set('inferenceSamples', values['inference-samples']);
  if (values['no-baseline']) base.baseline = false;
  // Local peers: start when all have joined (or after a minute with fewer); carry on with survivors.
  if (localPeers > 0) base.peers = { min: 1, graceSeconds: 60, ...(base.peers as object | undefined), max: localPeers };
  if (values['min-peers'] !== undefined || values['wait-seconds'] !== undefined) {
    const peers: Record<string, unknown> = { ...(base.peers as object | undefined) };
    if (values['min-peers'] !== undefined) peers.min = Number(values['min-peers']);
    if (values['wait-seconds'] !== undefined) peers.waitSeconds = Number(values['wait-seconds']);
    base.peers = peers;
  }
  // Every round's spec is checked before anything starts, so a typo never costs a trained teacher.
  const specs: RoundSpecInput[] = students.map((student, i) => ({ ...base, student, teacher: i === 0 ? teacher : PREVIOUS_ROUND }) as RoundSpecInput);
  for (const spec of specs) parseRoundSpec(spec, values.spec ? `round settings (file ${values.spec} and flags)` : 'round settings (flags)');

  const log = createLogger('distill');
  const runDir = values['run-dir'] ?? path.join('runs', 'distill');
  await mkdir(runDir, { recursive: true });
  const discovery = discoverySettingsFromFlags(values);
  const secret = localPeers > 0 && !process.env[SECRET_ENV] ? randomBytes(32).toString('hex') : undefined;
  const port = values.port === undefined ? (localPeers > 0 ? 0 : 7070) : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--port ${values.port}: expected a port number 0–65535`);
  const cluster = values.cluster ?? 'ringpipe';
  const job = parseClusterJob({ name: 'distill', ...(backend ? { backend } : {}), peers: { min: 1, max: Math.max(1, localPeers || 16) } }, 'distillation job');
  const coordinator = new Coordinator({
    job,
    jobName: 'distill',
    cluster,
    runDir,
    port,
    mdns: localPeers > 0 ? false : discovery.mdns,
    ...(secret ? { secret } : {}),
    ...(values.host ? { host: values.host } : localPeers > 0 ? { host: LISTEN_HOST } : {}),
    ...(discovery.interface ? { interface: discovery.interface } : {}),
    logger: log,
  });
  await coordinator.start();
  const { host, port: bound } = coordinator.address;
  process.stdout.write(`coordinator listening on ${host}:${bound} (cluster ${cluster}, run folder ${runDir})\n`);

  const children: ManagedChild[] = [];
  const logDir = path.join(runDir, 'logs');
  if (localPeers > 0) {
    await mkdir(logDir, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, [SECRET_ENV]: secret ?? process.env[SECRET_ENV], [EXIT_WITH_PARENT_ENV]: '1', RINGPIPE_LOG_FORMAT: 'json' };
    for (let i = 1; i <= localPeers; i++) {
      children.push(
        new ManagedChild({
          name: `peer-${i}`,
          script: path.join(SCRIPTS, 'peer.ts'),
          args: ['--coordinator', `${LISTEN_HOST}:${bound}`, '--node-id', `distill-peer-${i}`, '--no-mdns', '--reconnect-timeout', '30', ...(backend && backend !== 'auto' ? ['--backend', backend] : [])],
          env,
          logFile: path.join(logDir, `peer-${i}.log`),
        }),
      );
    }
    process.stdout.write(`${localPeers} local peer${localPeers === 1 ? '' : 's'} (logs in ${logDir})\n`);
  } else {
    process.stdout.write(`waiting for peers: npm run peer -- --coordinator <this host>:${bound} (same RINGPIPE_SECRET, --cluster ${cluster})\n`);
  }

  let interrupted = false;
  const onSignal = (signal: string): void => {
    interrupted = true;
    coordinator.distillation.cancel(`${signal} received`);
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  let lastLine = '';
  coordinator.state.on('change', (snapshot) => {
    const running = snapshot.distillation?.running;
    const line = running ? `round ${running.round}: ${running.progress.detail}` : '';
    if (line && line !== lastLine && !/step \d+\//.test(line)) process.stdout.write(`${line}\n`);
    lastLine = line;
  });

  const reports: RoundReport[] = [];
  let failure: string | undefined;
  try {
    for (const spec of specs) {
      if (interrupted) break;
      const report = await coordinator.distillation.run(spec);
      reports.push(report);
      process.stdout.write(`\n${formatReportTable(report)}\nsaved to ${path.join(report.dir, 'report.json')}\n`);
    }
  } catch (error) {
    failure = (error as Error).message;
  } finally {
    await coordinator.shutdown(failure ? `distillation failed: ${failure}`.slice(0, 1_900) : 'distillation finished', !failure);
    await Promise.all(children.map((child) => child.stop('SIGTERM', 10_000)));
  }
  if (values.report) await writeFile(values.report, `${JSON.stringify(reports, null, 2)}\n`);
  if (failure) {
    process.stderr.write(`error: ${failure}${localPeers > 0 ? ` (peer logs in ${logDir})` : ''}\n`);
    return interrupted ? 130 : 1;
  }
  return 0;
}

async function readSpecFile(file: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new Error(`--spec ${file}: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`--spec ${file}: expected a JSON object of round settings`);
  return value as Record<string, unknown>;
}

runCommand(main, (error) => (error instanceof JobValidationError ? 2 : 1));
