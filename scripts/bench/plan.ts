/**
 * `npm run bench:plan`: checks the capacity planner's predictions against measurements on this
 * machine. For each model and round: calibrate (the planner measures the model and the loopback
 * link, and how fast peers compute when 1 or 2 share this machine, as `npm run plan -- --local`
 * does), then time one peer alone, data parallel over 2 local peers and a 2-stage pipeline of 2 local
 * peers (each a process, in a session of its own as npm start starts them), calibrating again
 * between them. Each measurement is compared with the mean of the predictions made just before and
 * just after it (the load of a shared machine drifts; bracketing keeps the comparison about the
 * model, not about the drift). The table shows medians over rounds, and every round's error.
 *
 *   npm run bench:plan -- [--models mlp,cnn] [--batch 128] [--rounds 3] [--steps 12] [--bubble 0.2]
 *                         [--one-session] [--backend wasm] [--out DIR]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_BUBBLE_TARGET,
  LOCAL_HOST,
  localCluster,
  localHostLoad,
  measureLoopbackLink,
  measureNamedModel,
  withMeasuredLocalHost,
  predictDataParallel,
  predictPipelineWith,
  type ClusterSpec,
  type ModelMeasurements,
  type PipelinePrediction,
} from '../../coordinator/planner/index.js';
import { machineCpuTicks, busyCoresBetween } from '../../coordinator/planner/machine-load.js';
import { isBackendFlag } from '../../shared/engine/backend-candidates.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { measureDataParallel, measurePipeline, type Measured, type RunSettings } from './plan-measure.js';
import { isEntryPoint, parseCommandLine, runCommand } from '../../shared/cli/command.js';
import { median } from './median.js';

const HELP = `Usage: npm run bench:plan -- [flags]

  --models LIST     zoo models                                            [mlp,cnn]
  --batch N         mini-batch (global)                                   [128]
  --rounds R        rounds; the table shows medians                       [3]
  --steps N         timed steps per run, after 2 warm-up steps            [12]
  --bubble X        pipeline bubble target (sets M, as npm run plan does) [0.2]
  --repeats N       planner repetitions per measurement                   [5]
  --one-session     start the peers as plain children (one session; with Linux autogroup
                    they share one scheduling group) instead of one session each, like npm start
  --backend NAME    tensor backend                                        [wasm]
  --out DIR         summary.json and pipeline timelines                   [runs/bench-plan-<time>]`;

type Config = 'one peer' | 'data parallel, 2 peers' | '2-stage pipeline';
const CONFIGS: Config[] = ['one peer', 'data parallel, 2 peers', '2-stage pipeline'];

interface Calibration {
  measurements: ModelMeasurements;
  cluster: ClusterSpec;
}

interface RoundResult {
  model: string;
  round: number;
  config: Config;
  /** Predictions from the calibrations before and after the measurement. */
  predictedBefore: number;
  predictedAfter: number;
  predicted: number;
  measured: Measured;
  /** (predicted − measured) / measured. */
  error: number;
  loadAverage: number;
  coreShare: [number, number];
  predictedBubble?: number;
  /** Where the prediction before the run put the time. */
  predictedParts: Record<string, number | number[]>;
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      models: { type: 'string' },
      batch: { type: 'string' },
      rounds: { type: 'string' },
      steps: { type: 'string' },
      bubble: { type: 'string' },
      repeats: { type: 'string' },
      'one-session': { type: 'boolean' },
      backend: { type: 'string' },
      out: { type: 'string' },
    },
    HELP,
  );
  if (parsed.exitCode !== undefined) return parsed.exitCode;
  const { values } = parsed;
  const int = (name: string, text: string | undefined, fallback: number) => {
    const n = text === undefined ? fallback : Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number, got '${text}'`);
    return n;
  };
  const models = (values.models ?? 'mlp,cnn').split(',').map((m) => m.trim()).filter(Boolean);
  const batchSize = int('batch', values.batch, 128);
  const rounds = int('rounds', values.rounds, 3);
  const steps = int('steps', values.steps, 12);
  const repeats = int('repeats', values.repeats, 5);
  const bubbleTarget = values.bubble === undefined ? DEFAULT_BUBBLE_TARGET : Number(values.bubble);
  if (!(bubbleTarget > 0 && bubbleTarget < 1)) throw new Error(`--bubble must be a fraction between 0 and 1, got '${values.bubble}'`);
  const backend = values.backend ?? 'wasm';
  if (!isBackendFlag(backend)) throw new Error(`--backend must be node-gpu, node, wasm or cpu, got '${backend}'`);
  const oneSession = Boolean(values['one-session']);
  const outDir = values.out ?? path.join('runs', `bench-plan-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(outDir, { recursive: true });
  await selectBackend({ force: backend });

  const cores = os.cpus().length;
  const settingsFor = (model: string): RunSettings => ({ model, batchSize, steps, warmUp: 2, backend, cores, oneSession, timeoutMs: 20 * 60_000 });
  const calibrate = async (model: string): Promise<Calibration> => {
    const measurements = await measureNamedModel({ model, batchSize, optimizer: 'adam', repeats });
    const loopback = await measureLoopbackLink({ oneSession });
    const cluster = await withMeasuredLocalHost(localCluster({ count: 2, freeMemoryBytes: os.freemem(), load: localHostLoad(measurements.load, { oneSession }), loopback }), { measurements, backend, batchSizeHint: batchSize, oneSession });
    return { measurements, cluster };
  };
  const predict = (c: Calibration, config: Config, pipeline: PipelinePrediction | undefined): { stepMs: number; parts: Record<string, number | number[]> } => {
    const dp = predictDataParallel(c.measurements, c.cluster, batchSize);
    if (config === 'one peer') return { stepMs: dp.singlePeer.stepMs, parts: {} };
    if (config === 'data parallel, 2 peers') {
      return { stepMs: dp.stepMs, parts: { computeMs: dp.peers.map((p) => p.computeMs), allReduceMs: dp.allReduce.ms, updateMs: dp.peers.map((p) => p.updateMs), stragglerMs: dp.stragglerMs, coreShare: dp.peers.map((p) => p.coreShare) } };
    }
    const p = predictPipelineWith(c.measurements, c.cluster, batchSize, 2, { bubbleTarget, balance: pipeline!.balance, microBatches: pipeline!.microBatches })!;
    return {
      stepMs: p.stepMs,
      parts: {
        forwardMsPerMicro: p.stagePlans.map((s) => s.forwardMs),
        backwardMsPerMicro: p.stagePlans.map((s) => s.backwardMs),
        updateMs: p.stagePlans.map((s) => s.updateMs),
        // Span by span against the run's timelines: compute (passes + update) and idle per stage.
        busyMs: p.simulatedBusyMs,
        idleMs: p.simulatedIdleMs,
        bubble: p.bubblePredicted,
      },
    };
  };
  const describeCalibration = (c: Calibration) =>
    `core share ${c.measurements.load.coreShare.toFixed(2)}, per busy peer (1, 2 busy) ${c.cluster.hosts[LOCAL_HOST]?.measuredSharePerPeer?.map((s) => s.toFixed(2)).join(', ') ?? '?'}, ` +
    `jitter κ ${c.cluster.hosts[LOCAL_HOST]?.measuredJitterMs?.map((k) => k.toFixed(1)).join(', ') ?? '?'} ms, ` +
    `loopback ${c.cluster.loopback ? `${(c.cluster.loopback.bytesPerSecond / 1e6).toFixed(0)} MB/s, ${c.cluster.loopback.latencyMs.toFixed(2)} ms per message` : '?'}`;
  const describeParts = (parts: Record<string, number | number[]>) =>
    Object.entries(parts).map(([k, v]) => `${k} ${Array.isArray(v) ? v.map((x) => x.toFixed(k === 'coreShare' || k === 'bubble' ? 2 : 1)).join(' / ') : v.toFixed(k === 'bubble' ? 2 : 1)}`).join(', ');

  const loadAtStart = os.loadavg()[0]!;
  const ticksAtStart = machineCpuTicks();
  const started = performance.now();
  const results: RoundResult[] = [];
  for (const model of models) {
    const settings = settingsFor(model);
    for (let round = 1; round <= rounds; round++) {
      let before = await calibrate(model);
      // The pipeline to run: what the planner picks for 2 stages (balance by measured time, M for the bubble target).
      const pipeline = predictPipelineWith(before.measurements, before.cluster, batchSize, 2, { bubbleTarget });
      if (!pipeline) throw new Error(`the planner found no 2-stage split of ${model}`);
      for (const config of CONFIGS) {
        const loadAverage = os.loadavg()[0]!;
        process.stderr.write(`${model}, round ${round}/${rounds}: ${config}${config === '2-stage pipeline' ? ` [${pipeline.balance.join(', ')}], M = ${pipeline.microBatches}` : ''}…\n`);
        const measured =
          config === 'one peer'
            ? await measureDataParallel(settings, 1)
            : config === 'data parallel, 2 peers'
              ? await measureDataParallel(settings)
              : await measurePipeline(settings, pipeline, path.join(outDir, `${model}-round-${round}`));
        const after = await calibrate(model);
        const beforePrediction = predict(before, config, pipeline);
        const predictedBefore = beforePrediction.stepMs;
        const predictedAfter = predict(after, config, pipeline).stepMs;
        const predicted = (predictedBefore + predictedAfter) / 2;
        const result: RoundResult = {
          model,
          round,
          config,
          predictedBefore,
          predictedAfter,
          predicted,
          measured,
          error: (predicted - measured.stepMs) / measured.stepMs,
          loadAverage,
          coreShare: [before.measurements.load.coreShare, after.measurements.load.coreShare],
          predictedParts: beforePrediction.parts,
          ...(config === '2-stage pipeline' ? { predictedBubble: pipeline.bubblePredicted } : {}),
        };
        results.push(result);
        process.stderr.write(`  predicted ${predicted.toFixed(1)} ms (before ${predictedBefore.toFixed(1)}, after ${predictedAfter.toFixed(1)}), measured ${measured.stepMs.toFixed(1)} ms: ${pct(result.error)}; machine busy ${measured.machineBusyCores?.toFixed(2) ?? '?'} cores, load ${loadAverage.toFixed(1)}\n`);
        process.stderr.write(`  calibration before: ${describeCalibration(before)}; after: ${describeCalibration(after)}\n`);
        if (Object.keys(beforePrediction.parts).length > 0) process.stderr.write(`  predicted (before): ${describeParts(beforePrediction.parts)}\n`);
        if (measured.parts) process.stderr.write(`  measured per step: ${describeParts(measured.parts)}\n`);
        before = after;
      }
    }
  }
  const ticksAtEnd = machineCpuTicks();
  const loadAtEnd = os.loadavg()[0]!;

  const command = `npm run bench:plan -- ${argv.join(' ')}`.trim();
  const lines: string[] = [];
  lines.push(command);
  lines.push(
    `backend ${backend}, batch ${batchSize}, ${steps} timed steps after 2 warm-up, ${rounds} rounds, peers ${oneSession ? 'in one session' : 'each in its own session (as npm start)'}; ` +
      `${cores} cores, load average ${loadAtStart.toFixed(1)} at start, ${loadAtEnd.toFixed(1)} at end` +
      (ticksAtStart && ticksAtEnd ? `, machine busy ${busyCoresBetween(ticksAtStart, ticksAtEnd, cores).toFixed(2)} of ${cores} cores on average (/proc/stat)` : '') +
      `, ${((performance.now() - started) / 60_000).toFixed(1)} min`,
  );
  lines.push('');
  lines.push('| model | configuration | predicted ms | measured ms | error (median) | error per round | within 25% | bubble predicted / measured | machine busy (cores) | this process\'s core share |');
  lines.push('|---|---|--:|--:|--:|---|---|---|--:|---|');
  for (const model of models) {
    for (const config of CONFIGS) {
      const rows = results.filter((r) => r.model === model && r.config === config);
      if (rows.length === 0) continue;
      const error = median(rows.map((r) => r.error));
      const bubble = config === '2-stage pipeline' ? `${(median(rows.map((r) => r.predictedBubble!)) * 100).toFixed(0)}% / ${(median(rows.map((r) => r.measured.bubble!)) * 100).toFixed(0)}%` : '–';
      lines.push(
        `| ${model} | ${config}${config === '2-stage pipeline' ? '' : ''} | ${median(rows.map((r) => r.predicted)).toFixed(1)} | ${median(rows.map((r) => r.measured.stepMs)).toFixed(1)} | ${pct(error)} | ${rows.map((r) => pct(r.error)).join(', ')} | ` +
          `${Math.abs(error) <= 0.25 ? 'yes' : 'no'} (${rows.filter((r) => Math.abs(r.error) <= 0.25).length}/${rows.length} rounds) | ${bubble} | ${median(rows.map((r) => r.measured.machineBusyCores ?? NaN)).toFixed(2)} | ${rows.map((r) => `${r.coreShare[0].toFixed(2)}→${r.coreShare[1].toFixed(2)}`).join(', ')} |`,
      );
    }
  }
  lines.push('');
  lines.push('predicted: mean of the planner\'s predictions from its calibrations just before and just after the run; error = (predicted − measured) / measured.');
  lines.push('core share: CPU time ÷ wall time of the calibrating process, before → after the run (what one busy thread got).');
  process.stdout.write(`\n${lines.join('\n')}\n`);
  await writeFile(path.join(outDir, 'summary.json'), JSON.stringify({ command, backend, batchSize, steps, rounds, oneSession, bubbleTarget, loadAtStart, loadAtEnd, results }, null, 2));
  process.stdout.write(`\nper-run details in ${path.join(outDir, 'summary.json')}\n`);
  return 0;
}

if (isEntryPoint(import.meta.url)) runCommand(main);
