/**
 * `npm run bench:pipeline`: GPipe pipelines of stage processes on this machine, over loopback links.
 * For every stage count K and micro-batch count M: time per mini-batch, samples/s beside one process
 * training the same model (peer/trainer's trainStep), the measured bubble (idle ÷ step time, from
 * every stage's timeline) beside the theoretical (K − 1)/(M + K − 1), activation memory held, and a
 * Chrome trace per configuration (open in chrome://tracing or https://ui.perfetto.dev).
 *
 *   npm run bench:pipeline -- [--model mlp-deep] [--stages 2,3] [--micro 1,2,4,8,16] [--batch 256] [--steps 20]
 *                             [--backend wasm] [--balance parameters|time|2,2] [--schedules gpipe,1f1b]
 *                             [--remat] [--defer true,false] [--settle-rows 64,128] [--rounds 3] [--one-session] [--cpu-prof DIR] [--out DIR]
 *   npm run bench:pipeline -- --stage-cpu [--stages 2] [--micro …] [--balance …]
 *                             CPU time of every stage's passes, in one process, no links: the arithmetic alone
 *
 * Every stage, and the one-process baseline, is a process in a session of its own, as `npm start`
 * and `npm run peer` start peers: with Linux's autogroup each session gets its own share of a busy
 * machine, as each peer of a cluster would. `--one-session` starts them as plain children of this
 * benchmark instead (one scheduling group for all of them).
 *
 * Each configuration trains `steps` mini-batches after one warm-up mini-batch (not counted). A round
 * measures the single-process baseline (in this process, same backend and batches) and then every
 * pipeline; figures are medians over rounds (speed-ups: median of each round's ratio), so a change in
 * machine load during the run hits baseline and pipelines alike.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EpochBatches } from '../../shared/data/epoch-batches.js';
import { loadMnist } from '../../shared/data/mnist.js';
import { isBackendFlag } from '../../shared/engine/backend-candidates.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { createModel } from '../../shared/models/create-model.js';
import { outputKindOf } from '../../peer/trainer/loss.js';
import { trainingBatches } from '../../shared/data/training-batches.js';
import { trainStep } from '../../peer/trainer/train-step.js';
import { launchStages } from '../../peer/pipeline/launch/launch-stages.js';
import { stageOptimizer } from '../../peer/pipeline/launch/stage-optimizer.js';
import { PIPELINE_JOB_ENV, stageFilePrefix, type PipelineJobInput, type PipelineRun, type StageRunReport } from '../../peer/pipeline/launch/pipeline-job.js';
import { planBalance } from '../../peer/pipeline/partition/plan-balance.js';
import { partitionModel } from '../../peer/pipeline/partition/partition-model.js';
import { splitMiniBatch } from '../../peer/pipeline/microbatch.js';
import { StageCompute } from '../../peer/pipeline/stage-compute.js';
import { SCHEDULE_KINDS, type ScheduleKind } from '../../peer/pipeline/schedule/schedule.js';
import { summarizeBubble, type BubbleSummary } from '../../peer/pipeline/timeline/bubble.js';
import { replayBubble, type ReplayedBubble } from '../../peer/pipeline/timeline/replayed-bubble.js';
import { toChromeTrace } from '../../peer/pipeline/timeline/chrome-trace.js';
import type { TimelineData } from '../../peer/pipeline/timeline/timeline.js';
import { median } from './median.js';

const { values } = parseArgs({
  options: {
    // A uniform stack that splits into equal stages, as pipelined models do; --model mlp for the small mlp.
    model: { type: 'string', default: 'mlp-deep' },
    stages: { type: 'string', default: '2,3' },
    micro: { type: 'string', default: '1,2,4,8,16' },
    batch: { type: 'string', default: '256' },
    steps: { type: 'string', default: '20' },
    backend: { type: 'string', default: 'wasm' },
    balance: { type: 'string', default: 'parameters' },
    schedules: { type: 'string', default: 'gpipe' },
    remat: { type: 'boolean', default: false },
    // 'true,false' also runs every configuration with weight gradients per micro-batch, side by side.
    defer: { type: 'string', default: 'true' },
    // '64,128' also runs every configuration with the first stage multiplying its deferred weight
    // gradients every 64 and 128 rows during its backward passes (default: all at the update).
    'settle-rows': { type: 'string' },
    // The first stage multiplies its deferred weight gradients while it waits for an output gradient
    // (the default); 'true,false' also runs every configuration without, side by side.
    'settle-waiting': { type: 'string', default: 'true' },
    'one-session': { type: 'boolean', default: false },
    'baseline-worker': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'stage-cpu': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});

const list = (text: string) => text.split(',').map((part) => part.trim()).filter(Boolean);
const integers = (text: string, name: string) =>
  list(text).map((part) => {
    const n = Number(part);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes positive whole numbers separated by commas, got '${text}'`);
    return n;
  });
const booleans = (text: string, name: string) =>
  list(text).map((part) => {
    if (part !== 'true' && part !== 'false') throw new Error(`--${name} takes true, false or true,false, got '${text}'`);
    return part === 'true';
  });
const stageCounts = integers(values.stages, 'stages');
const microCounts = integers(values.micro, 'micro');
const [batchSize] = integers(values.batch, 'batch');
const [steps] = integers(values.steps, 'steps');
const [rounds] = integers(values.rounds, 'rounds');
const schedules = list(values.schedules) as ScheduleKind[];
const deferModes = booleans(values.defer, 'defer');
const settleWaitingModes = booleans(values['settle-waiting'], 'settle-waiting');
const settleRowsModes: (number | undefined)[] = values['settle-rows'] ? integers(values['settle-rows'], 'settle-rows') : [undefined];
for (const schedule of schedules) if (!SCHEDULE_KINDS.includes(schedule)) throw new Error(`--schedules: unknown schedule '${schedule}' (${SCHEDULE_KINDS.join(', ')})`);
if (!isBackendFlag(values.backend)) throw new Error(`--backend: unknown backend '${values.backend}'`);
const backend = values.backend;
const outDir = values.out ?? path.join('runs', `bench-pipeline-${new Date().toISOString().replace(/[:.]/g, '-')}`);
const SEED = 42;
/** The stages' optimizer settings (the launcher's job defaults). */
const ADAM = { optimizer: 'adam', learningRate: 0.001 } as const;
const STAGE_PROGRAM = path.join(path.dirname(new URL(import.meta.url).pathname), '../../peer/pipeline/launch/stage-main.ts');

interface Baseline {
  stepMs: number;
  samplesPerSecond: number;
  /** CPU milliseconds of the process per step (median). */
  cpuMsPerStep: number;
}

const THIS_PROGRAM = new URL(import.meta.url).pathname;
const BASELINE_PREFIX = 'baseline ';

/** Children started here, killed if the benchmark is interrupted (detached ones would outlive it). */
const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
const killChildren = () => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL'));
process.once('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killChildren();
    process.exit(130);
  });
}

/** A process of this benchmark: a session of its own unless --one-session. */
function startProcess(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  // --cpu-prof DIR: a V8 CPU profile of every process (stages and baseline), for chrome://inspect or speedscope.
  const profile = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']] : [];
  return track(spawn(process.execPath, [...profile, '--import', 'tsx', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: !values['one-session'] }));
}

/** The baseline in a process (and session) of its own, like a stage: this benchmark's own process is not a fair competitor. */
function baselineInProcess(): Promise<Baseline> {
  return new Promise((resolve, reject) => {
    const child = startProcess([THIS_PROGRAM, '--baseline-worker', ...process.argv.slice(2)], process.env);
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(BASELINE_PREFIX));
      if (code === 0 && line) resolve(JSON.parse(line.slice(BASELINE_PREFIX.length)) as Baseline);
      else reject(new Error(`the one-process baseline failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' / ')}`));
    });
  });
}

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

/** One process, whole mini-batches: the throughput a pipeline has to beat. */
async function singleProcessBaseline(): Promise<Baseline> {
  const data = await loadMnist('train');
  const inputShape = [28, 28, 1];
  const model = await createModel(values.model, { inputShape, numClasses: 10, seed: SEED });
  // The optimizer and the batches the stages use (FusedAdam on wasm, the data pipeline). No prefetch: each
  // batch is assembled before its step's clock starts, so the baseline never pays for it.
  const optimizer = stageOptimizer(ADAM);
  const batches = trainingBatches(data, { batchSize: batchSize!, seed: SEED, prefetch: 0 }).iterate();
  const ctx = { model, optimizer, inputShape, numClasses: 10, outputKind: outputKindOf(model) };
  const times: number[] = [];
  const cpu: number[] = [];
  for (let step = 0; step <= steps!; step++) {
    const batch = await batches.next();
    const started = performance.now();
    const startedCpu = cpuNowMs();
    await trainStep(ctx, batch);
    if (step > 0) {
      times.push(performance.now() - started);
      cpu.push(cpuNowMs() - startedCpu);
    }
  }
  await batches.close();
  model.dispose();
  optimizer.dispose();
  const stepMs = median(times);
  return { stepMs, samplesPerSecond: (batchSize! * 1000) / stepMs, cpuMsPerStep: median(cpu) };
}

/** One configuration in one round. */
interface Measurement {
  stages: number;
  balance: number[];
  run: PipelineRun;
  summary: BubbleSummary;
  /** The same steps replayed with free links: what the stages' own work and the schedule imply. */
  replayed: ReplayedBubble;
  samplesPerSecond: number;
  peakHeldMiB: number[];
  /** CPU cores the stage processes used, and all other processes of the machine, during the run. */
  cores: number;
  otherCores: number | undefined;
  /** CPU milliseconds of all stage processes per mini-batch (warm-up included). */
  cpuMsPerStep: number;
  trace: string;
}

async function benchStages(stages: number, round: number): Promise<Measurement[]> {
  const model = await createModel(values.model, { inputShape: [28, 28, 1], numClasses: 10, seed: SEED });
  const plan = planBalance(model, stages, values.balance, { batchSize: Math.max(1, Math.floor(batchSize! / 4)) });
  model.dispose();
  const runs: PipelineRun[] = settleWaitingModes.flatMap((settleWhileWaiting) =>
    settleRowsModes.flatMap((settleRows) =>
      deferModes.flatMap((deferWeightGradients) =>
        schedules.flatMap((schedule) =>
          microCounts.map((microBatches) => ({ microBatches, schedule, rematerialize: values.remat, deferWeightGradients, ...(settleRows ? { settleRows } : {}), settleWhileWaiting })),
        ),
      ),
    ),
  );
  const dir = path.join(outDir, `round-${round}`, `K${stages}`);
  const job: PipelineJobInput = { model: values.model, seed: SEED, data: 'mnist', balance: plan.balance, batchSize, steps: steps! + 1, backend, runs, outDir: dir, receiveTimeoutMs: 120_000 };
  console.error(`round ${round}, K=${stages}: balance [${plan.balance.join(', ')}] by ${plan.rule}; ${runs.length} configurations…`);
  const outcomes = await launchStages({
    stages,
    timeoutMs: 30 * 60_000,
    spawn: (_place, env) => startProcess([STAGE_PROGRAM], { ...process.env, ...env, [PIPELINE_JOB_ENV]: JSON.stringify(job), RINGPIPE_LOG_LEVEL: 'warn' }),
  });
  const reports = outcomes.flatMap((o) => o.reports.filter((r) => r.kind === 'run').map((r) => r.data as StageRunReport));
  const measurements: Measurement[] = [];
  for (const [index, run] of runs.entries()) {
    const timelines: TimelineData[] = [];
    for (let stage = 0; stage < stages; stage++) {
      timelines.push(JSON.parse(await readFile(`${stageFilePrefix(dir, index, stage, 0)}.timeline.json`, 'utf8')) as TimelineData);
    }
    const summary = summarizeBubble(timelines, { skipSteps: 1 });
    const trace = path.join(outDir, `round-${round}`, `trace-K${stages}-${run.schedule}${run.rematerialize ? '-remat' : ''}${run.deferWeightGradients ? '' : '-dW-per-micro'}${run.settleRows ? `-settle${run.settleRows}` : ''}${run.settleWhileWaiting ? '' : '-no-settle-waiting'}-M${run.microBatches}.json`);
    await writeFile(trace, JSON.stringify(toChromeTrace(timelines)));
    const runReports = reports.filter((r) => r.run === index).sort((a, b) => a.stage - b.stage);
    const wallMs = Math.max(...runReports.map((r) => r.trainMs));
    const ours = runReports.reduce((total, r) => total + r.cpuMs, 0);
    const machine = runReports[0]?.machineCpuMs;
    measurements.push({
      stages,
      balance: plan.balance,
      run,
      summary,
      replayed: replayBubble(timelines, { skipSteps: 1 }),
      samplesPerSecond: (batchSize! * 1000) / summary.stepMs,
      peakHeldMiB: runReports.map((r) => r.peakHeldBytes / 2 ** 20),
      cores: ours / wallMs,
      cpuMsPerStep: ours / (steps! + 1),
      otherCores: machine === undefined ? undefined : Math.max(0, machine - ours) / wallMs,
      trace,
    });
  }
  return measurements;
}

/** A configuration over all rounds. */
interface Row {
  rounds: Measurement[];
  /** Median over rounds of pipeline samples/s ÷ that round's one-process samples/s. */
  speedup: number;
}

function table(baseline: Baseline, rows: Row[]): string {
  const header = ['K', 'M', 'schedule', 'step ms', 'samples/s', 'vs 1 proc', 'bubble', 'theory', 'free links', 'idle ms/stage', 'compute ms/stage', 'held MiB/stage', 'CPU ms/step', 'cores', 'others'];
  const lines = [
    ['1', '–', 'one process', baseline.stepMs.toFixed(1), baseline.samplesPerSecond.toFixed(0), '1.00×', '–', '–', '–', '–', '–', '–', baseline.cpuMsPerStep.toFixed(1), '–', '–'],
    ...rows.map((row) => {
      const first = row.rounds[0]!;
      const of = (f: (m: Measurement) => number) => median(row.rounds.map(f));
      const perStage = (f: (s: BubbleSummary['perStage'][number]) => number) =>
        first.summary.perStage.map((_, i) => of((m) => f(m.summary.perStage[i]!) / m.summary.steps).toFixed(0)).join(' / ');
      const others = row.rounds.every((m) => m.otherCores !== undefined) ? of((m) => m.otherCores!).toFixed(2) : '?';
      return [
        String(first.stages),
        String(first.run.microBatches),
        `${first.run.schedule}${first.run.rematerialize ? ' remat' : ''}${first.run.deferWeightGradients === false ? ' dW/micro' : ''}${first.run.settleRows ? ` settle ${first.run.settleRows}` : ''}${first.run.settleWhileWaiting ? '' : ' no settle waiting'}`,
        of((m) => m.summary.stepMs).toFixed(1),
        of((m) => m.samplesPerSecond).toFixed(0),
        `${row.speedup.toFixed(2)}×`,
        `${(of((m) => m.summary.measured) * 100).toFixed(1)}%`,
        `${(first.summary.theoretical * 100).toFixed(1)}%`,
        `${(of((m) => m.replayed.bubble) * 100).toFixed(1)}% / ${of((m) => m.replayed.stepMs).toFixed(1)}`,
        perStage((s) => s.idleMs),
        perStage((s) => s.computeMs),
        first.peakHeldMiB.map((m) => m.toFixed(1)).join(' / '),
        of((m) => m.cpuMsPerStep).toFixed(1),
        of((m) => m.cores).toFixed(2),
        others,
      ];
    }),
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]) => `| ${cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [format(header), `|${widths.map((w, i) => (i < 3 ? `${'-'.repeat(w + 2)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...lines.map(format)].join('\n');
}

/**
 * `--stage-cpu`: each stage's forward, backward and update in this process, CPU milliseconds per
 * mini-batch (median of 10 after 3 warm-up repetitions: the first configuration in the process also pays
 * for compiling and growing memory), for every M, with weight gradients per micro-batch and deferred
 * to the update (StageCompute's deferWeightGradients), beside trainStep on the whole model: what the
 * stages' arithmetic costs before any link, event loop or scheduler is involved.
 */
const STAGE_CPU_WARM_UP = 3;

async function stageCpuProfile(): Promise<void> {
  const data = await loadMnist('train');
  const batches = new EpochBatches(data, { batchSize: batchSize!, seed: SEED });
  const batch = batches.next();
  for (const stages of stageCounts) {
    const model = await createModel(values.model, { inputShape: [28, 28, 1], numClasses: 10, seed: SEED });
    const { balance } = planBalance(model, stages, values.balance, { batchSize: Math.max(1, Math.floor(batchSize! / 4)) });
    const parts = partitionModel(model, balance);
    console.log(`K=${stages}, balance [${balance.join(', ')}], mini-batch ${batchSize}: CPU ms per mini-batch (forward / backward / update per stage)`);
    for (const microBatches of microCounts) for (const defer of [false, true]) {
      const micro = splitMiniBatch(batch, microBatches);
      const cells: string[] = [];
      let total = 0;
      for (const stage of parts) {
        const isFirst = stage.index === 0;
        const isLast = stage.index === parts.length - 1;
        const compute = new StageCompute({ stage, isFirst, isLast, rematerialize: values.remat, deferWeightGradients: defer, loss: { numClasses: 10, outputKind: outputKindOf(model) } });
        const optimizer = stageOptimizer(ADAM);
        const outputGradients = micro.map((m) => new Float32Array(m.size * stage.outputShape.reduce((a, b) => a * b, 1)).fill(1e-3));
        const inputs = micro.map((m) => (isFirst ? m.xs : new Float32Array(m.size * stage.inputShape.reduce((a, b) => a * b, 1)).fill(0.5)));
        const f: number[] = [];
        const b: number[] = [];
        const u: number[] = [];
        for (let rep = 0; rep < STAGE_CPU_WARM_UP + 10; rep++) {
          let started = cpuNowMs();
          micro.forEach((m, i) => {
            const result = compute.forward(i, tf.tensor(inputs[i]!, [m.size, ...stage.inputShape]), isLast ? { labels: m.labels, lossScale: m.lossScale } : undefined);
            if (result.output) {
              result.output.dataSync();
              result.output.dispose();
            }
          });
          const forwardMs = cpuNowMs() - started;
          started = cpuNowMs();
          for (let i = micro.length - 1; i >= 0; i--) {
            const dx = compute.backward(i, isLast ? undefined : tf.tensor(outputGradients[i]!, [micro[i]!.size, ...stage.outputShape]));
            if (dx) {
              dx.dataSync();
              dx.dispose();
            }
          }
          const backwardMs = cpuNowMs() - started;
          started = cpuNowMs();
          const gradients = compute.gradients.take();
          optimizer.applyGradients(gradients);
          tf.dispose(gradients);
          if (rep >= STAGE_CPU_WARM_UP) {
            f.push(forwardMs);
            b.push(backwardMs);
            u.push(cpuNowMs() - started);
          }
        }
        optimizer.dispose();
        total += median(f) + median(b) + median(u);
        cells.push(`${median(f).toFixed(1)} / ${median(b).toFixed(1)} / ${median(u).toFixed(1)}`);
      }
      console.log(`  M=${String(microBatches).padEnd(3)} ${defer ? 'dW deferred ' : 'dW per micro'} ${cells.map((c, i) => `stage ${i}: ${c}`).join('   ')}   all stages ${total.toFixed(1)}`);
    }
    model.dispose();
  }
  const baseline = await singleProcessBaseline();
  console.log(`one process (trainStep, whole mini-batch): ${baseline.cpuMsPerStep.toFixed(1)} CPU ms per mini-batch`);
}

async function main(): Promise<void> {
  if (values['stage-cpu']) {
    await selectBackend({ force: backend });
    await stageCpuProfile();
    return;
  }
  if (values['baseline-worker']) {
    await selectBackend({ force: backend });
    process.stdout.write(`${BASELINE_PREFIX}${JSON.stringify(await singleProcessBaseline())}\n`);
    return;
  }
  await mkdir(outDir, { recursive: true });
  const selection = await selectBackend({ force: backend });
  const loadAtStart = os.loadavg()[0]!;
  console.error(`model ${values.model}, batch ${batchSize}, ${steps} timed steps after 1 warm-up, ${rounds} rounds, backend ${selection.flag}, ${os.cpus().length} cores, load ${loadAtStart.toFixed(1)}`);
  const baselines: Baseline[] = [];
  const measured = new Map<string, { measurements: Measurement[]; ratios: number[] }>();
  for (let round = 1; round <= rounds!; round++) {
    const baseline = await baselineInProcess();
    baselines.push(baseline);
    console.error(`round ${round}, one process: ${baseline.stepMs.toFixed(1)} ms/step, ${baseline.samplesPerSecond.toFixed(0)} samples/s`);
    for (const stages of stageCounts) {
      for (const m of await benchStages(stages, round)) {
        const key = `${m.stages}/${m.run.schedule}/${m.run.rematerialize}/${m.run.deferWeightGradients}/${m.run.settleRows}/${m.run.settleWhileWaiting}/${m.run.microBatches}`;
        const entry = measured.get(key) ?? { measurements: [], ratios: [] };
        entry.measurements.push(m);
        entry.ratios.push(m.samplesPerSecond / baseline.samplesPerSecond);
        measured.set(key, entry);
      }
    }
  }
  const rows: Row[] = [...measured.values()].map((entry) => ({ rounds: entry.measurements, speedup: median(entry.ratios) }));
  const baselineStepMs = median(baselines.map((b) => b.stepMs));
  const baseline = { stepMs: baselineStepMs, samplesPerSecond: (batchSize! * 1000) / baselineStepMs, cpuMsPerStep: median(baselines.map((b) => b.cpuMsPerStep)) };
  const loadAtEnd = os.loadavg()[0]!;
  const command = `npm run bench:pipeline -- ${process.argv.slice(2).join(' ')}`.trim();
  console.log(`\n${command}`);
  console.log(`model ${values.model}, mini-batch ${batchSize}, backend ${selection.flag}, ${steps} timed steps after 1 warm-up, medians of ${rounds} rounds; ${os.cpus().length} cores, load average ${loadAtStart.toFixed(1)} at start, ${loadAtEnd.toFixed(1)} at end`);
  console.log(`one process per round (ms/step): ${baselines.map((b) => b.stepMs.toFixed(1)).join(', ')}; every process in ${values['one-session'] ? 'one session (plain children)' : 'a session of its own (as npm start)'}`);
  for (const stages of stageCounts) console.log(`K=${stages}: balance [${rows.find((r) => r.rounds[0]!.stages === stages)!.rounds[0]!.balance.join(', ')}] by ${values.balance}`);
  console.log(`\n${table(baseline, rows)}\n`);
  console.log("bubble: idle ÷ step time, mean over stages (idle = waiting for a neighbour's activations or gradients, or for sends to drain); theory: (K − 1)/(M + K − 1).");
  console.log("free links: the same steps replayed with every pass, update and batch wait as measured but tensors crossing at no cost: bubble / step ms (unequal stages and the update show here; the rest of the measured bubble is the links').");
  console.log('CPU ms/step: CPU time of all stage processes per mini-batch (one process: its own); cores: CPU time of the stage processes ÷ wall time of the run; others: CPU cores all other processes of the machine used meanwhile.');
  console.log(`Chrome traces (chrome://tracing, ui.perfetto.dev) per round and configuration, and summary.json, in ${outDir}`);
  await writeFile(
    path.join(outDir, 'summary.json'),
    JSON.stringify({ command, model: values.model, batchSize, steps, rounds, backend: selection.flag, loadAtStart, loadAtEnd, baselines, rows }, null, 2),
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error((error as Error).stack ?? error);
    process.exit(1);
  },
);
