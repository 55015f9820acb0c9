/**
 * `npm run bench:distill`: the distillation table of docs/benchmarks.md, by one command. Trains
 * the teacher once (in this process, on the training images before the validation split; cached in
 * the output folder), then for each seed runs one distillation round on a local cluster
 * (`npm run distill`: a coordinator + N peer processes) with the rounds' own defaults
 * (round-defaults.ts): distilled student and the same student alone on hard labels with the same
 * budget. Prints every seed's figures, then mean ± sample standard deviation, and writes summary.json.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DISTILL_DEFAULTS, TEACHER_RECIPE } from '../../coordinator/distillation/round-defaults.js';
import type { ModelFigures, RoundReport } from '../../coordinator/distillation/round-report.js';
import { loadMnist } from '../../shared/data/mnist.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { saveModel } from '../../shared/models/file-io.js';
import { describeZoo } from '../../shared/models/zoo.js';
import { buildTeacher } from './distill-teacher.js';
import { ManagedChild } from '../local-cluster/managed-child.js';
import { parseCommandLine, runCommand } from '../../shared/cli/command.js';

const D = DISTILL_DEFAULTS;
const HELP = `Usage: npm run bench:distill -- [flags]

Every round setting defaults to the rounds' own defaults (what \`npm run distill\` runs), chosen on
a validation split (\`npm run bench:distill-screen\`); a flag here overrides it for every seed.

  --seeds LIST             student seeds, one round each                          [1,2,3]
  --teacher MODEL          use this trained teacher instead of training ${TEACHER_RECIPE.model}
  --teacher-epochs LIST    the ${TEACHER_RECIPE.model} teacher (seed ${TEACHER_RECIPE.seed}, first ${TEACHER_RECIPE.trainImages} images): its
                           checkpoints after these epochs, logits averaged (one: a single model) [${TEACHER_RECIPE.ensembleEpochs.join(',')}]
  --student NAME           student (zoo name or model file)                      [${D.student}]
  --transfer-samples N     the students' budget: the first N training samples…         [${D.transferSamples}]
  --steps S                …in S optimizer steps of one batch each                    [${D.steps}]
  --batch-size B                                                                        [${D.batchSize}]
  --top-k K, --temperature T, --alpha A                                        [${D.topK}, ${D.temperature}, ${D.alpha}]
  --peers N                peer processes per round                                       [2]
  --out DIR                teacher, rounds, logs and summary.json        [runs/bench-distill]
  --help                   this text`;

const SCRIPTS = path.join(import.meta.dirname, '..');

interface Options {
  seeds: number[];
  teacher: string | undefined;
  teacherEpochs: number[];
  /** Round flags given here, passed on to every round (the rest are the rounds' defaults). */
  roundFlags: string[];
  peers: number;
  out: string;
}

/** This benchmark's flags that are round settings, under the same name as `npm run distill`'s. */
const ROUND_FLAGS = ['student', 'transfer-samples', 'steps', 'batch-size', 'top-k', 'temperature', 'alpha'] as const;

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      seeds: { type: 'string' },
      teacher: { type: 'string' },
      'teacher-epochs': { type: 'string' },
      student: { type: 'string' },
      'transfer-samples': { type: 'string' },
      steps: { type: 'string' },
      'batch-size': { type: 'string' },
      'top-k': { type: 'string' },
      temperature: { type: 'string' },
      alpha: { type: 'string' },
      peers: { type: 'string' },
      out: { type: 'string' },
    },
    HELP,
  );
  if (parsed.exitCode !== undefined) return parsed.exitCode;
  const { values } = parsed;
  const number = (raw: string | undefined, fallback: number, name: string): number => {
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`--${name} ${raw}: expected a number`);
    return value;
  };
  const options: Options = {
    seeds: (values.seeds ?? '1,2,3').split(',').map((s) => number(s.trim(), 0, 'seeds')),
    teacher: values.teacher,
    teacherEpochs: values['teacher-epochs'] === undefined ? [...TEACHER_RECIPE.ensembleEpochs] : values['teacher-epochs'].split(',').map((e) => number(e.trim(), 0, 'teacher-epochs')),
    roundFlags: ROUND_FLAGS.flatMap((flag) => (values[flag] === undefined ? [] : [`--${flag}`, values[flag]])),
    peers: number(values.peers, 2, 'peers'),
    out: values.out ?? path.join('runs', 'bench-distill'),
  };
  await mkdir(path.join(options.out, 'logs'), { recursive: true });
  const started = performance.now();
  const teacher = options.teacher ?? (await trainTeacher(options));

  const reports: RoundReport[] = [];
  for (const seed of options.seeds) {
    process.stdout.write(`seed ${seed}: distillation round on ${options.peers} peers…\n`);
    const reportFile = path.join(options.out, `seed-${seed}.json`);
    await run('distill', path.join(SCRIPTS, 'distill.ts'), [
      '--teacher', teacher,
      '--seed', String(seed),
      ...options.roundFlags,
      '--peers', String(options.peers),
      '--run-dir', options.out,
      '--report', reportFile,
    ], path.join(options.out, 'logs', `distill-seed-${seed}.log`));
    const [report] = JSON.parse(await readFile(reportFile, 'utf8')) as RoundReport[];
    if (!report) throw new Error(`${reportFile} holds no report`);
    reports.push(report);
    process.stdout.write(`${describeSeed(report)}\n`);
  }
  const summary = summarize(reports, options, (performance.now() - started) / 1000);
  await writeFile(path.join(options.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`\n${formatSummary(summary)}\nsummary: ${path.join(options.out, 'summary.json')}\n`);
  return 0;
}

/** The teacher (TEACHER_RECIPE), trained once in this process: a finished teacher in the output folder is reused. */
async function trainTeacher(options: Options): Promise<string> {
  const dir = path.join(options.out, 'teacher');
  const settingsFile = path.join(dir, 'settings.json');
  const recipe = { ...TEACHER_RECIPE, epochs: Math.max(...options.teacherEpochs), ensembleEpochs: options.teacherEpochs };
  // The architecture's description is part of the key: a changed zoo entry retrains the teacher.
  const architecture = describeZoo().split('\n').find((line) => line.startsWith(`${recipe.model}:`));
  const settings = JSON.stringify({ ...recipe, architecture });
  const modelDir = path.join(dir, 'model');
  if ((await readFile(settingsFile, 'utf8').catch(() => '')) === settings && (await readFile(path.join(modelDir, 'model.json')).catch(() => undefined))) {
    process.stdout.write(`teacher: reusing ${modelDir}\n`);
    return modelDir;
  }
  const ensemble = recipe.ensembleEpochs.length > 1 ? `, the mean of its checkpoints after epochs ${recipe.ensembleEpochs.join(' and ')}` : '';
  process.stdout.write(`teacher: training ${recipe.model} for ${recipe.epochs} epochs on the first ${recipe.trainImages} training images (the rest is the validation split)${ensemble}…\n`);
  await mkdir(dir, { recursive: true });
  const selection = await selectBackend({});
  const began = performance.now();
  const model = await buildTeacher(await loadMnist('train'), recipe);
  try {
    await saveModel(model, modelDir);
  } finally {
    model.dispose();
  }
  process.stdout.write(`teacher: trained in ${((performance.now() - began) / 1000).toFixed(0)} s on ${selection.flag}\n`);
  await writeFile(settingsFile, settings);
  return modelDir;
}

async function run(name: string, script: string, args: string[], logFile: string): Promise<string[]> {
  const child = new ManagedChild({ name, script, args, logFile, env: { ...process.env, RINGPIPE_LOG_FORMAT: 'json' } });
  const stop = (): void => void child.stop('SIGINT', 20_000);
  process.once('SIGINT', stop);
  try {
    const exit = await child.exited;
    if (exit.code !== 0) throw new Error(`${name} exited with ${exit.code ?? exit.signal}; log: ${logFile}\n${child.lines.slice(-5).join('\n')}`);
    return child.lines;
  } finally {
    process.off('SIGINT', stop);
  }
}

function figures(report: RoundReport, role: ModelFigures['role']): ModelFigures {
  const model = report.models.find((m) => m.role === role);
  if (!model) throw new Error(`round ${report.round} has no ${role}`);
  return model;
}

function describeSeed(report: RoundReport): string {
  const pct = (role: ModelFigures['role']): string => `${(figures(report, role).accuracy * 100).toFixed(2)}%`;
  const gap = report.gapClosed === null ? 'n/a' : `${(report.gapClosed * 100).toFixed(1)}%`;
  return `  seed ${report.settings.seed}: teacher ${pct('teacher')}, distilled ${pct('student')}, alone ${pct('student-alone')}, gap closed ${gap}`;
}

interface Spread {
  mean: number;
  sd: number;
  min: number;
  max: number;
}

function spread(values: number[]): Spread {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = values.length > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, sd, min: Math.min(...values), max: Math.max(...values) };
}

function summarize(reports: RoundReport[], options: Options, seconds: number) {
  const roles = ['teacher', 'student', 'student-alone'] as const;
  const first = reports[0]!;
  return {
    options,
    budget: { steps: first.settings.steps, batchSize: first.settings.batchSize, transferSamples: first.settings.transferSamples, optimizer: first.settings.optimizer, learningRate: first.settings.learningRate },
    softTargets: { topK: first.settings.topK, temperature: first.settings.temperature, alpha: first.settings.alpha },
    student: first.student,
    models: roles.map((role) => ({
      role,
      parameters: figures(first, role).parameters,
      bytesOnDisk: figures(first, role).bytesOnDisk,
      msPerSample: spread(reports.map((r) => figures(r, role).msPerSample)),
      inferenceBatch: figures(first, role).inferenceBatch,
      accuracy: spread(reports.map((r) => figures(r, role).accuracy)),
    })),
    gapClosed: spread(reports.map((r) => r.gapClosed ?? Number.NaN)),
    perSeed: reports.map((r) => ({ seed: r.settings.seed, teacher: figures(r, 'teacher').accuracy, student: figures(r, 'student').accuracy, alone: figures(r, 'student-alone').accuracy, gapClosed: r.gapClosed, dir: r.dir })),
    machine: { backend: figures(first, 'teacher').backend, peers: first.settings.peers.length },
    seconds,
  };
}

function formatSummary(summary: ReturnType<typeof summarize>): string {
  const pm = (s: Spread, scale: number, digits: number): string => `${(s.mean * scale).toFixed(digits)} ± ${(s.sd * scale).toFixed(digits)}`;
  const label = { teacher: 'teacher', student: 'distilled student', 'student-alone': 'student alone' } as const;
  const header = ['model', 'parameters', 'size on disk', `ms/sample (batch ${summary.models[0]!.inferenceBatch})`, 'test accuracy %'];
  const rows = summary.models.map((m) => [label[m.role], m.parameters.toLocaleString('en-US'), `${(m.bytesOnDisk / 1024).toFixed(1)} KiB`, pm(m.msPerSample, 1, 4), pm(m.accuracy, 100, 2)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const b = summary.budget;
  return [
    `students: ${b.steps} steps × batch ${b.batchSize} over the first ${b.transferSamples} training samples (≈ ${(b.steps / Math.floor(b.transferSamples / b.batchSize)).toFixed(0)} passes), ${b.optimizer} lr ${b.learningRate}; top-${summary.softTargets.topK} soft targets, T = ${summary.softTargets.temperature}, alpha = ${summary.softTargets.alpha}; ${summary.perSeed.length} seeds (mean ± sample sd)`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    `gap closed: ${pm(summary.gapClosed, 100, 1)}% (per seed: ${summary.perSeed.map((s) => (s.gapClosed === null ? 'n/a' : `${(s.gapClosed * 100).toFixed(1)}%`)).join(', ')})`,
    `wall clock ${summary.seconds.toFixed(0)} s`,
  ].join('\n');
}

runCommand(main);
