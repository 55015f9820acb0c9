/**
 * `npm run bench:dp -- [flags]`: time to a target MNIST test accuracy, one process versus N
 * data-parallel replicas on this machine, in the same run (interleaved, median of --runs). Both go
 * through the same trainer (one process = a ring of one) and follow the same trajectory (same global
 * batch and seed), so they reach the target at the same step; the clock excludes evaluations.
 * Also prints where a step's time goes (compute, exposed communication, data wait).
 */
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { launchRing } from '../../peer/allreduce/launch/launch-ring.js';
import { isCompression } from '../../peer/compression/create-reducer.js';
import type { DataParallelResult, DataParallelStepReport } from '../../peer/data-parallel/dp-trainer.js';
import { median } from './median.js';
import type { DpWorkerConfig } from './dp-worker.js';
import { isEntryPoint, runCommand } from '../../shared/cli/command.js';

const WORKER = path.join(import.meta.dirname, 'dp-worker.ts');

type StepTimes = Pick<DataParallelStepReport, 'computeMs' | 'commMs' | 'dataWaitMs'>;

const HELP = `Usage: npm run bench:dp -- [flags]

  --peers N          data-parallel replicas to compare with one process      [2]
  --runs R           runs of each; the table shows the median                 [1]
  --target X         test accuracy to reach                                   [0.97]
  --model NAME       zoo model                                                [mlp]
  --batch-size N     global batch (the same for both runs)                    [512]
  --lr X             learning rate (adam)                                     [0.002]
  --epochs E         give up after E epochs                                   [3]
  --eval-every K     evaluate every K steps (not counted as training time)    [50]
  --compress C       none | fp16 | powersgd                                   [none]
  --data-plane P     tcp | tcp-threaded | link                                [tcp]
  --overlap          all-reduce bucket by bucket during the backward pass (DDP-style)
  --bucket-mib X     gradient bucket size in MiB (as Horovod / DDP name it)   [1 with --overlap,
                     else one fused buffer]
  --sharded          Adam inside the all-reduce (ZeRO-1 style): each rank updates the segment it
                     finishes reducing, the all-gather carries weights (no compression only)
  --backend B        tensor backend of every process                          [wasm]
  --no-baseline      skip the 1-process runs (e.g. to compare compressions)
  --cpu-prof DIR     write a V8 CPU profile of every training process to DIR (open in Chrome DevTools)`;

interface RunResult {
  peers: number;
  result: DataParallelResult;
  steps: DataParallelStepReport[];
  /** Training CPU ms per step of each rank (dp-worker.ts). */
  cpuMsPerStep: number[];
  /** Each rank's mean compute / exposed comm / data wait ms per step after warm-up. */
  perRank: { computeMs: number; commMs: number; dataWaitMs: number }[];
}

async function runOnce(peers: number, config: DpWorkerConfig, cpuProfDir?: string): Promise<RunResult> {
  const steps: DataParallelStepReport[] = [];
  const outcomes = await launchRing({
    worldSize: peers,
    timeoutMs: 3_600_000,
    spawn: (_rank, env) => {
      // RINGPIPE_BENCH_NODE_ARGS="--single-threaded-gc …": extra V8/Node flags for every rank, both configurations.
      const nodeArgs = [...(process.env.RINGPIPE_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), ...(cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : []), '--import', 'tsx', WORKER];
      return spawn(process.execPath, nodeArgs, {
        env: { ...process.env, ...env, RINGPIPE_DP_CONFIG: JSON.stringify(config), RINGPIPE_LOG_LEVEL: 'warn', RINGPIPE_LOG_FORMAT: 'json' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    },
    onReport: (rank, kind, data) => {
      if (kind === 'step') steps.push(data as DataParallelStepReport);
      if (kind === 'eval') {
        const e = data as { step: number; trainSeconds: number; evaluation: { accuracy: number } };
        process.stderr.write(`  ${peers} peer(s): step ${e.step}, ${e.trainSeconds.toFixed(1)} s, test accuracy ${(e.evaluation.accuracy * 100).toFixed(2)}%\n`);
      }
      void rank;
    },
  });
  const result = outcomes[0]!.reports.find((r) => r.kind === 'result')?.data as DataParallelResult;
  const cpu = outcomes.map((o) => o.reports.find((r) => r.kind === 'cpu')?.data as ({ trainCpuMsPerStep: number } & RunResult['perRank'][number]) | undefined);
  const cpuMsPerStep = cpu.map((c) => c?.trainCpuMsPerStep ?? NaN);
  const perRank = cpu.map((c) => ({ computeMs: c?.computeMs ?? NaN, commMs: c?.commMs ?? NaN, dataWaitMs: c?.dataWaitMs ?? NaN }));
  return { peers, result, steps, cpuMsPerStep, perRank };
}

/** Mean ms per step after the warm-up steps (also each rank's own summary in dp-worker.ts). */
export function stepBreakdown(steps: StepTimes[]): { compute: number; comm: number; dataWait: number; total: number } {
  // The first steps include warm-up (kernel compilation, fresh buffers): leave them out.
  const steady = steps.slice(Math.min(10, Math.floor(steps.length / 5)));
  const mean = (f: (s: StepTimes) => number) => steady.reduce((sum, s) => sum + f(s), 0) / Math.max(1, steady.length);
  const compute = mean((s) => s.computeMs);
  const comm = mean((s) => s.commMs);
  const dataWait = mean((s) => s.dataWaitMs);
  return { compute, comm, dataWait, total: compute + comm + dataWait };
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      peers: { type: 'string' },
      runs: { type: 'string' },
      target: { type: 'string' },
      model: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      epochs: { type: 'string' },
      'eval-every': { type: 'string' },
      compress: { type: 'string' },
      'data-plane': { type: 'string' },
      backend: { type: 'string' },
      'no-baseline': { type: 'boolean' },
      'bucket-mib': { type: 'string' },
      overlap: { type: 'boolean' },
      sharded: { type: 'boolean' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const peers = Number(values.peers ?? 2);
  const runs = Number(values.runs ?? 1);
  const target = Number(values.target ?? 0.97);
  const compression = values.compress ?? 'none';
  if (!isCompression(compression)) throw new Error(`--compress must be none, fp16 or powersgd, got '${compression}'`);
  const config: DpWorkerConfig = {
    job: {
      model: values.model ?? 'mlp',
      // Data parallelism splits the global batch, so it is run with larger ones than one process
      // would pick; one process reaches 97% as fast at 512 as at 128 (docs/benchmarks.md).
      batchSize: Number(values['batch-size'] ?? 512),
      learningRate: Number(values.lr ?? 0.002),
      epochs: Number(values.epochs ?? 3),
      optimizer: 'adam',
      seed: 42,
      backend: (values.backend ?? 'wasm') as 'wasm',
    },
    compression,
    dataPlane: (values['data-plane'] ?? 'tcp') as DpWorkerConfig['dataPlane'],
    evalEvery: Number(values['eval-every'] ?? 50),
    targetAccuracy: target,
    hashEvery: 50,
    ...(values['bucket-mib'] !== undefined ? { bucketBytes: Math.round(Number(values['bucket-mib']) * 1024 * 1024) } : {}),
    ...(values.overlap ? { overlapBackward: true } : {}),
    ...(values.sharded ? { shardedUpdate: true } : {}),
  };
  if (config.bucketBytes !== undefined && !(config.bucketBytes >= 4)) throw new Error(`--bucket-mib must be a positive size in MiB, got '${values['bucket-mib']}'`);
  const loadBefore = os.loadavg();
  const single: RunResult[] = [];
  const parallel: RunResult[] = [];
  for (let run = 0; run < runs; run++) {
    if (!values['no-baseline']) {
      process.stderr.write(`run ${run + 1}/${runs}: 1 process\n`);
      single.push(await runOnce(1, config, values['cpu-prof']));
    }
    process.stderr.write(`run ${run + 1}/${runs}: ${peers} processes\n`);
    parallel.push(await runOnce(peers, { ...config, compression }, values['cpu-prof']));
  }
  const loadAfter = os.loadavg();
  const row = (label: string, results: RunResult[]) => {
    const seconds = results.map((r) => r.result.secondsToTarget ?? NaN);
    // The busiest rank's CPU per step, median over runs.
    const cpu = median(results.map((r) => Math.max(...r.cpuMsPerStep)));
    const b = stepBreakdown(results[0]!.steps);
    const reached = results.every((r) => r.result.secondsToTarget !== undefined);
    return {
      label,
      seconds: median(seconds),
      cpu,
      text: `| ${label} | ${cpu.toFixed(1)} | ${reached ? `${median(seconds).toFixed(1)} (${seconds.map((x) => x.toFixed(1)).join(', ')})` : 'not reached'} | ${results.map((r) => r.result.stepsToTarget ?? '–').join(', ')} | ${results.map((r) => ((r.result.test?.accuracy ?? NaN) * 100).toFixed(2)).join(', ')} | ${b.compute.toFixed(1)} | ${b.comm.toFixed(1)} | ${b.dataWait.toFixed(1)} | ${((results[0]!.result.totals.wireBytes / Math.max(1, results[0]!.result.steps)) / 1024).toFixed(0)} |`,
    };
  };
  const one = single.length > 0 ? row('1 process', single) : undefined;
  const many = row(`${peers} processes (${compression})`, parallel);
  process.stdout.write(
    `\n### Time to ${(target * 100).toFixed(1)}% MNIST test accuracy: ${config.job.model}, global batch ${config.job.batchSize}, adam lr ${config.job.learningRate}, backend ${config.job.backend}, data plane ${config.dataPlane}\n\n` +
      `median of ${runs} run(s) each, interleaved; evaluation every ${config.evalEvery} steps, not counted; load average ${loadBefore[0]!.toFixed(2)} before, ${loadAfter[0]!.toFixed(2)} after (${os.cpus().length} cores)\n\n` +
      `| run | CPU ms/step (busiest rank) | seconds to target | steps to target | final test accuracy % | compute ms/step | exposed comm ms/step | data wait ms/step | KiB sent/step |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n` +
      `${one ? `${one.text}\n` : ''}${many.text}\n\n` +
      (one ? `ratio ${peers} processes / 1 process: ${(many.seconds / one.seconds).toFixed(3)} (target ≤ 0.65)\n` : '') +
      (one
        ? `CPU per step, busiest of ${peers} ranks / 1 process: ${(many.cpu / one.cpu).toFixed(3)} (same steps to target: what the wall ratio would be with a free core per rank and no waiting)\n`
        : '') +
      `per rank, compute / exposed comm / data wait ms per step (each run): ${parallel
        .map((r) => r.perRank.map((p, rank) => `r${rank} ${p.computeMs.toFixed(1)}/${p.commMs.toFixed(1)}/${p.dataWaitMs.toFixed(1)}`).join(' '))
        .join('; ')}\n`,
  );
  return 0;
}

if (isEntryPoint(import.meta.url)) runCommand(main);
