/**
 * `npm run bench:pipeline`: GPipe pipelines of stage processes on this machine, over loopback links.
 * For every stage count K and micro-batch count M: time per mini-batch, samples/s beside one process
 * training the same model (peer/trainer's trainStep), the measured bubble (idle ÷ step time, from
 * every stage's timeline) beside the theoretical (K − 1)/(M + K − 1), activation memory held, and a
 * Chrome trace per configuration (open in chrome://tracing or https://ui.perfetto.dev).
 *
 *   npm run bench:pipeline -- [--model mlp] [--stages 2,3] [--micro 1,2,4,8] [--batch 256] [--steps 6]
 *                             [--backend wasm] [--balance parameters|time|2,2] [--schedules gpipe,1f1b]
 *                             [--remat] [--out DIR]
 *
 * Each configuration trains `steps` mini-batches after one warm-up mini-batch (not counted). The
 * single-process baseline runs in this process before the pipelines, on the same backend and batches.
 */
import { spawn } from 'node:child_process';
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
import { createOptimizer } from '../../peer/trainer/optimizer.js';
import { trainStep } from '../../peer/trainer/train-step.js';
import { launchStages } from '../../peer/pipeline/launch/launch-stages.js';
import { PIPELINE_JOB_ENV, stageFilePrefix, type PipelineJobInput, type PipelineRun, type StageRunReport } from '../../peer/pipeline/launch/pipeline-job.js';
import { planBalance } from '../../peer/pipeline/partition/plan-balance.js';
import { SCHEDULE_KINDS, type ScheduleKind } from '../../peer/pipeline/schedule/schedule.js';
import { summarizeBubble, type BubbleSummary } from '../../peer/pipeline/timeline/bubble.js';
import { toChromeTrace } from '../../peer/pipeline/timeline/chrome-trace.js';
import type { TimelineData } from '../../peer/pipeline/timeline/timeline.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'mlp' },
    stages: { type: 'string', default: '2,3' },
    micro: { type: 'string', default: '1,2,4,8' },
    batch: { type: 'string', default: '256' },
    steps: { type: 'string', default: '6' },
    backend: { type: 'string', default: 'wasm' },
    balance: { type: 'string', default: 'parameters' },
    schedules: { type: 'string', default: 'gpipe' },
    remat: { type: 'boolean', default: false },
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
const stageCounts = integers(values.stages, 'stages');
const microCounts = integers(values.micro, 'micro');
const [batchSize] = integers(values.batch, 'batch');
const [steps] = integers(values.steps, 'steps');
const schedules = list(values.schedules) as ScheduleKind[];
for (const schedule of schedules) if (!SCHEDULE_KINDS.includes(schedule)) throw new Error(`--schedules: unknown schedule '${schedule}' (${SCHEDULE_KINDS.join(', ')})`);
if (!isBackendFlag(values.backend)) throw new Error(`--backend: unknown backend '${values.backend}'`);
const backend = values.backend;
const outDir = values.out ?? path.join('runs', `bench-pipeline-${new Date().toISOString().replace(/[:.]/g, '-')}`);
const SEED = 42;
const STAGE_PROGRAM = path.join(path.dirname(new URL(import.meta.url).pathname), '../../peer/pipeline/launch/stage-main.ts');

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** One process, whole mini-batches: the throughput a pipeline has to beat. */
async function singleProcessBaseline(): Promise<{ stepMs: number; samplesPerSecond: number }> {
  const data = await loadMnist('train');
  const inputShape = [28, 28, 1];
  const model = await createModel(values.model, { inputShape, numClasses: 10, seed: SEED });
  const optimizer = createOptimizer({ optimizer: 'adam', learningRate: 0.001 });
  const batches = new EpochBatches(data, { batchSize: batchSize!, seed: SEED });
  const ctx = { model, optimizer, inputShape, numClasses: 10, outputKind: outputKindOf(model) };
  const times: number[] = [];
  for (let step = 0; step <= steps!; step++) {
    const batch = batches.next();
    const started = performance.now();
    await trainStep(ctx, batch);
    if (step > 0) times.push(performance.now() - started);
  }
  model.dispose();
  optimizer.dispose();
  const stepMs = median(times);
  return { stepMs, samplesPerSecond: (batchSize! * 1000) / stepMs };
}

interface Row {
  stages: number;
  balance: number[];
  run: PipelineRun;
  summary: BubbleSummary;
  samplesPerSecond: number;
  peakHeldMiB: number[];
  cores: number;
  trace: string;
}

async function benchStages(stages: number): Promise<Row[]> {
  const model = await createModel(values.model, { inputShape: [28, 28, 1], numClasses: 10, seed: SEED });
  const plan = planBalance(model, stages, values.balance, { batchSize: Math.max(1, Math.floor(batchSize! / 4)) });
  model.dispose();
  const runs: PipelineRun[] = schedules.flatMap((schedule) => microCounts.map((microBatches) => ({ microBatches, schedule, rematerialize: values.remat })));
  const dir = path.join(outDir, `K${stages}`);
  const job: PipelineJobInput = { model: values.model, seed: SEED, data: 'mnist', balance: plan.balance, batchSize, steps: steps! + 1, backend, runs, outDir: dir, receiveTimeoutMs: 120_000 };
  console.error(`K=${stages}: balance [${plan.balance.join(', ')}] by ${plan.rule}; ${runs.length} configurations…`);
  const outcomes = await launchStages({
    stages,
    timeoutMs: 30 * 60_000,
    spawn: (_place, env) =>
      spawn(process.execPath, ['--import', 'tsx', STAGE_PROGRAM], { env: { ...process.env, ...env, [PIPELINE_JOB_ENV]: JSON.stringify(job), RINGPIPE_LOG_LEVEL: 'warn' }, stdio: ['pipe', 'pipe', 'pipe'] }),
    onReport: (place, kind, data) => {
      if (kind === 'run' && place.stage === stages - 1) console.error(`  K=${stages} run ${(data as StageRunReport).run} done`);
    },
  });
  const reports = outcomes.flatMap((o) => o.reports.filter((r) => r.kind === 'run').map((r) => r.data as StageRunReport));
  const rows: Row[] = [];
  for (const [index, run] of runs.entries()) {
    const timelines: TimelineData[] = [];
    for (let stage = 0; stage < stages; stage++) {
      timelines.push(JSON.parse(await readFile(`${stageFilePrefix(dir, index, stage, 0)}.timeline.json`, 'utf8')) as TimelineData);
    }
    const summary = summarizeBubble(timelines, { skipSteps: 1 });
    const trace = path.join(outDir, `trace-K${stages}-${run.schedule}${run.rematerialize ? '-remat' : ''}-M${run.microBatches}.json`);
    await writeFile(trace, JSON.stringify(toChromeTrace(timelines)));
    const runReports = reports.filter((r) => r.run === index).sort((a, b) => a.stage - b.stage);
    rows.push({
      stages,
      balance: plan.balance,
      run,
      summary,
      samplesPerSecond: (batchSize! * 1000) / summary.stepMs,
      peakHeldMiB: runReports.map((r) => r.peakHeldBytes / 2 ** 20),
      cores: runReports.reduce((total, r) => total + r.cpuMs, 0) / Math.max(...runReports.map((r) => r.trainMs)),
      trace,
    });
  }
  return rows;
}

function table(baseline: { stepMs: number; samplesPerSecond: number }, rows: Row[]): string {
  const header = ['K', 'M', 'schedule', 'step ms', 'samples/s', 'vs 1 proc', 'bubble', 'theory', 'idle ms/stage', 'compute ms/stage', 'held MiB/stage', 'cores'];
  const lines = [
    ['1', '–', 'one process', baseline.stepMs.toFixed(1), baseline.samplesPerSecond.toFixed(0), '1.00×', '–', '–', '–', '–', '–', '–'],
    ...rows.map((row) => {
      const per = (f: (s: BubbleSummary['perStage'][number]) => number) => row.summary.perStage.map((s) => (f(s) / row.summary.steps).toFixed(0)).join(' / ');
      return [
        String(row.stages),
        String(row.run.microBatches),
        `${row.run.schedule}${row.run.rematerialize ? ' remat' : ''}`,
        row.summary.stepMs.toFixed(1),
        row.samplesPerSecond.toFixed(0),
        `${(row.samplesPerSecond / baseline.samplesPerSecond).toFixed(2)}×`,
        `${(row.summary.measured * 100).toFixed(1)}%`,
        `${(row.summary.theoretical * 100).toFixed(1)}%`,
        per((s) => s.idleMs),
        per((s) => s.computeMs),
        row.peakHeldMiB.map((m) => m.toFixed(1)).join(' / '),
        row.cores.toFixed(2),
      ];
    }),
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]) => `| ${cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [format(header), `|${widths.map((w, i) => (i < 3 ? `${'-'.repeat(w + 2)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...lines.map(format)].join('\n');
}

async function main(): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const selection = await selectBackend({ force: backend });
  const loadAtStart = os.loadavg()[0]!;
  console.error(`model ${values.model}, batch ${batchSize}, ${steps} timed steps after 1 warm-up, backend ${selection.flag}, ${os.cpus().length} cores, load ${loadAtStart.toFixed(1)}`);
  // Measured before and after the pipelines, so a change in machine load shows.
  const before = await singleProcessBaseline();
  console.error(`one process: ${before.stepMs.toFixed(1)} ms/step, ${before.samplesPerSecond.toFixed(0)} samples/s`);
  const rows: Row[] = [];
  for (const stages of stageCounts) rows.push(...(await benchStages(stages)));
  const after = await singleProcessBaseline();
  console.error(`one process again: ${after.stepMs.toFixed(1)} ms/step, ${after.samplesPerSecond.toFixed(0)} samples/s`);
  const stepMs = (before.stepMs + after.stepMs) / 2;
  const baseline = { stepMs, samplesPerSecond: (batchSize! * 1000) / stepMs, before, after };
  const loadAtEnd = os.loadavg()[0]!;
  const command = `npm run bench:pipeline -- ${process.argv.slice(2).join(' ')}`.trim();
  console.log(`\n${command}`);
  console.log(`model ${values.model}, mini-batch ${batchSize}, backend ${selection.flag}, ${steps} timed steps after 1 warm-up; ${os.cpus().length} cores, load average ${loadAtStart.toFixed(1)} at start, ${loadAtEnd.toFixed(1)} at end`);
  console.log(`one process: ${before.stepMs.toFixed(1)} ms/step before the pipelines, ${after.stepMs.toFixed(1)} after (the mean is the baseline)`);
  for (const stages of stageCounts) console.log(`K=${stages}: balance [${rows.find((r) => r.stages === stages)!.balance.join(', ')}] by ${values.balance}`);
  console.log(`\n${table(baseline, rows)}\n`);
  console.log('bubble: idle ÷ step time, mean over stages (idle = waiting for a neighbour\'s activations or gradients, or for sends to drain); theory: (K − 1)/(M + K − 1).');
  console.log('cores: CPU time of all stage processes ÷ wall time of the run.');
  console.log(`Chrome traces (chrome://tracing, ui.perfetto.dev) and summary.json in ${outDir}`);
  await writeFile(
    path.join(outDir, 'summary.json'),
    JSON.stringify({ command, model: values.model, batchSize, steps, backend: selection.flag, loadAtStart, loadAtEnd, baseline, rows }, null, 2),
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error((error as Error).stack ?? error);
    process.exit(1);
  },
);
