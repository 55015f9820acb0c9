/**
 * `npm run bench:ingest`: does the input pipeline keep the trainer fed?
 *
 *   npm run bench:ingest -- [--images 3000] [--batch 64] [--rounds 5] [--workers 2] [--prefetch 4]
 *                           [--ingest-batches 40] [--train-steps 25]   (--train-steps 0: ingestion only)
 *
 * Dataset: a temporary folder of generated 64×64 RGB PNGs (MNIST digits on noise, see
 * ingest-images.ts). Pipeline: decode (greyscale) → random 56×56 crop + flip → resize to 28×28 →
 * scale, batched. Three configurations, run one after the other inside every round so machine
 * load hits them alike; figures are medians over rounds:
 *   inline             map in the trainer's thread, no prefetch
 *   prefetch only      map in the trainer's thread, `prefetch` batches ahead
 *   parallel+prefetch  map in `workers` threads, `prefetch` batches ahead
 * 1. ingestion: batches/s with nothing else running (first 2 batches excluded; the process's worker
 *    threads start in the first threaded measurement and are reused by the later ones, as in a trainer);
 * 2. training: the `cnn` zoo model on the wasm backend; the stall meter gives the share of each
 *    step spent waiting for data (TensorFlow's analyser: < 5% not input-bound, 5–20% moderately,
 *    > 20% highly). Also checks every configuration yields byte-identical batches.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { imageFolderSource, type DataIterator, type ImageFolderSource } from '../../shared/data/index.js';
import { loadMnist } from '../../shared/data/mnist.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { parseTrainingJob } from '../../shared/job/schema.js';
import { buildZooModel } from '../../shared/models/zoo.js';
import { outputKindOf } from '../../peer/trainer/loss.js';
import { createOptimizer } from '../../peer/trainer/optimizer.js';
import { trainStep, type StepContext } from '../../peer/trainer/train-step.js';
import { digitImageBatches, writeDigitImages } from './ingest-images.js';

const { values: flags } = parseArgs({
  options: {
    images: { type: 'string', default: '3000' },
    batch: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '5' },
    workers: { type: 'string', default: '2' },
    prefetch: { type: 'string', default: '4' },
    'ingest-batches': { type: 'string', default: '40' },
    'train-steps': { type: 'string', default: '25' },
  },
});
const imageCount = Number(flags.images);
const batchSize = Number(flags.batch);
const rounds = Number(flags.rounds);
const workers = Number(flags.workers);
const prefetch = Number(flags.prefetch);
const ingestBatches = Number(flags['ingest-batches']);
const trainSteps = Number(flags['train-steps']);

interface Config {
  name: string;
  parallel: number;
  prefetch: number;
}
const CONFIGS: Config[] = [
  { name: 'inline', parallel: 0, prefetch: 0 },
  { name: 'prefetch only', parallel: 0, prefetch },
  { name: `parallel ${workers} + prefetch`, parallel: workers, prefetch },
];

function pipeline(source: ImageFolderSource, config: Config): DataIterator {
  return digitImageBatches(source, batchSize, config.parallel)
    .prefetch(config.prefetch)
    .iterate({ stall: { reportEvery: 1_000_000 } });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number, digits = 0) => x.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const USER_HZ = 100; // /proc/stat clock ticks per second on Linux

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3]! + (fields[4] ?? 0);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

interface IngestResult {
  samplesPerSecond: number;
  /** CPU time of this process (all its threads) per sample: the work does not grow with threads. */
  cpuMsPerSample: number;
  /** Cores this process kept busy: what the machine let it have. */
  cores: number;
  /** Cores other processes kept busy meanwhile. */
  otherCores: number;
  digest: string;
}

async function measureIngest(source: ImageFolderSource, config: Config): Promise<IngestResult> {
  const iterator = pipeline(source, config);
  const hash = createHash('sha256');
  try {
    for (let i = 0; i < 2; i++) hash.update(new Uint8Array((await iterator.next()).xs.buffer));
    const started = performance.now();
    const cpu = process.cpuUsage();
    const machine = machineCpu();
    for (let i = 0; i < ingestBatches; i++) hash.update(new Uint8Array((await iterator.next()).xs.buffer));
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const cpuSeconds = (used.user + used.system) / 1e6;
    const machineCores = (machineCpu().busy - machine.busy) / USER_HZ / seconds;
    const samples = ingestBatches * batchSize;
    return { samplesPerSecond: samples / seconds, cpuMsPerSample: (cpuSeconds * 1000) / samples, cores: cpuSeconds / seconds, otherCores: Math.max(0, machineCores - cpuSeconds / seconds), digest: hash.digest('hex').slice(0, 12) };
  } finally {
    await iterator.close();
  }
}

async function measureTraining(source: ImageFolderSource, config: Config, ctx: StepContext): Promise<{ stallPercent: number; samplesPerSecond: number }> {
  const iterator = pipeline(source, config);
  try {
    // The meter times from one next() call to the following one and leaves out the first step
    // (thread start-up): trainSteps + 1 trained steps and one closing call give trainSteps measured steps.
    for (let step = 0; step <= trainSteps + 1; step++) {
      const batch = await iterator.next();
      if (step <= trainSteps) await trainStep(ctx, batch);
    }
    const report = iterator.stall.snapshot();
    return { stallPercent: report.stallPercent, samplesPerSecond: (report.steps * batchSize * 1000) / report.stepMs };
  } finally {
    await iterator.close();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-bench-ingest-'));
  try {
    const generated = performance.now();
    const bytes = writeDigitImages(await loadMnist('train'), imageCount, dir);
    const source = await imageFolderSource(dir);
    process.stdout.write(`dataset: ${source.size} PNGs 64×64 RGB, ${fmt(bytes / source.size / 1024, 1)} KiB each, made in ${fmt((performance.now() - generated) / 1000, 1)} s in ${dir}\n`);

    const selection = await selectBackend({ force: 'wasm' });
    const inputShape = [28, 28, 1];
    const model = buildZooModel('cnn', { inputShape, numClasses: 10, seed: 1 });
    const ctx: StepContext = { model, optimizer: createOptimizer(parseTrainingJob({ model: 'cnn', batchSize })), inputShape, numClasses: 10, outputKind: outputKindOf(model) };
    process.stdout.write(`backend ${selection.flag}; batch ${batchSize}; ${rounds} rounds; ${os.cpus().length} cores, load average ${os.loadavg().map((l) => fmt(l, 2)).join(' ')} at start\n\n`);

    const cpuStart = machineCpu();
    const ownStart = process.cpuUsage();
    const wallStart = performance.now();
    const ingest = new Map<string, IngestResult[]>();
    const digests = new Map<string, Set<string>>();
    const stall = new Map<string, number[]>();
    const training = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      // Rotate the order each round so no configuration always runs first (or right after another).
      const order = CONFIGS.map((_, i) => CONFIGS[(i + round) % CONFIGS.length]!);
      for (const config of order) {
        const result = await measureIngest(source, config);
        (ingest.get(config.name) ?? ingest.set(config.name, []).get(config.name)!).push(result);
        (digests.get(config.name) ?? digests.set(config.name, new Set()).get(config.name)!).add(result.digest);
      }
      for (const config of trainSteps > 0 ? CONFIGS : []) {
        const result = await measureTraining(source, config, ctx);
        (stall.get(config.name) ?? stall.set(config.name, []).get(config.name)!).push(result.stallPercent);
        (training.get(config.name) ?? training.set(config.name, []).get(config.name)!).push(result.samplesPerSecond);
      }
      process.stderr.write(`round ${round + 1}/${rounds} done\n`);
    }
    const cpuEnd = machineCpu();
    const own = process.cpuUsage(ownStart);
    const wallSeconds = (performance.now() - wallStart) / 1000;
    const machineBusyCores = (cpuEnd.busy - cpuStart.busy) / USER_HZ / wallSeconds;
    const ownCores = (own.user + own.system) / 1e6 / wallSeconds;

    const allDigests = new Set([...digests.values()].flatMap((s) => [...s]));
    const inlineRuns = ingest.get(CONFIGS[0]!.name)!;
    const rows = CONFIGS.map((c) => {
      const runs = ingest.get(c.name)!;
      const ing = median(runs.map((r) => r.samplesPerSecond));
      // Ratio within each round (same load), then the median over rounds.
      const ratio = median(runs.map((r, i) => r.samplesPerSecond / inlineRuns[i]!.samplesPerSecond));
      const st = trainSteps > 0 ? median(stall.get(c.name)!) : Number.NaN;
      const verdict = Number.isNaN(st) ? '–' : st < 5 ? 'not input-bound' : st <= 20 ? 'moderately' : 'highly';
      const cells = [
        c.name.padEnd(22),
        fmt(ing).padStart(8),
        `${fmt(ratio, 2)}×`.padStart(9),
        fmt(median(runs.map((r) => r.cpuMsPerSample)), 2).padStart(9),
        fmt(median(runs.map((r) => r.cores)), 2).padStart(5),
        fmt(median(runs.map((r) => r.otherCores)), 2).padStart(6),
        (trainSteps > 0 ? fmt(median(training.get(c.name)!)) : '–').padStart(7),
        (Number.isNaN(st) ? "–" : `${fmt(st, 1)}%`).padStart(9),
        verdict.padEnd(15),
      ];
      return `| ${cells.join(' | ')} |`;
    });
    process.stdout.write(
      [
        '| pipeline               | ingest/s | vs inline | CPU ms/sa | cores | others | train/s | wait/step | verdict         |',
        '|------------------------|---------:|----------:|----------:|------:|-------:|--------:|----------:|-----------------|',
        ...rows,
        '',
        `ingest/s, train/s: samples/s. ingest: ${ingestBatches} batches after 2 warm-up batches; vs inline: median of the per-round ratios;`,
        `CPU ms/sa: CPU time of all our threads per sample; cores: cores we kept busy; others: cores other processes kept busy meanwhile.`,
        `training: cnn, ${trainSteps} steps after 1 warm-up step; wait/step from the pipeline's stall meter. Medians of ${rounds} rounds.`,
        `per-round ingest samples/s: ${CONFIGS.map((c) => `${c.name}: ${ingest.get(c.name)!.map((v) => fmt(v.samplesPerSecond)).join(', ')}`).join('; ')}`,
        `per-round wait %: ${CONFIGS.map((c) => `${c.name}: ${(stall.get(c.name) ?? []).map((v) => fmt(v, 1)).join(', ')}`).join('; ')}`,
        `check: ${allDigests.size === 1 ? 'all configurations gave byte-identical batches ✓' : `batches DIFFER between configurations: ${[...digests].map(([k, v]) => `${k}: ${[...v].join(',')}`).join('; ')}`}`,
        `machine: ${fmt(machineBusyCores, 2)} of ${os.cpus().length} cores busy on average during the run, ${fmt(ownCores, 2)} of them this benchmark, ${fmt(Math.max(0, machineBusyCores - ownCores), 2)} other processes; load average ${os.loadavg().map((l) => fmt(l, 2)).join(' ')} at end`,
        '',
      ].join('\n'),
    );
    model.dispose();
    ctx.optimizer.dispose();
    if (allDigests.size !== 1) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
