/**
 * `npm run bench:allreduce -- --peers N`: ring all-reduce throughput, nccl-tests style (size, time,
 * algbw, busbw = algbw·2(n−1)/n, correctness), beside PyTorch gloo measured in the same run on the
 * same machine. Each run launches our ranks, then gloo's; the table shows the median of --runs runs.
 * With --lan MBIT the ranks run one per host of an emulated LAN whose links are capped at MBIT.
 */
import os from 'node:os';
import { ADD_KERNEL } from '../../peer/allreduce/reduce-kernels.js';
import { checkLanSupport, createLan, type Lan } from '../lan/index.js';
import { glooAvailable, runGloo, runOurs, type Placement, type SizeResult } from './allreduce-runners.js';
import { formatCpu, formatProfile, formatTable, medianResults, type TableColumn } from './allreduce-table.js';
import type { WorkerConfig } from './allreduce-worker.js';
import { isEntryPoint, parseCommandLine, runCommand } from '../../shared/cli/command.js';

const HELP = `Usage: npm run bench:allreduce -- [flags]

  --peers N[,M…]       ranks in the ring (several: one table each)             [2]
  --sizes LIST         sizes, e.g. 1M,4M,64M (K and M = KiB, MiB)             [1M,2M,4M,8M,16M,32M,64M]
  --runs R             runs per contender; the table shows the median          [3]
  --iters N            timed all-reduces per size and run                      [10; 2 on --lan]
  --warmup N           untimed all-reduces per size before timing              [3; 1 on --lan]
  --chunk-bytes B[,C…] pipeline chunk, or auto (the ring's default: 1 MiB,
                       up to 4 MiB for large buffers); several: one column each [auto]
  --in-flight N[,M…]   chunks sent ahead (several: one column each)            [4]
  --data-plane P[,Q…]  tcp-threaded | tcp | link: one column each (tcp-threaded:
                       I/O threads; tcp: one thread; link: frames on the
                       authenticated transport link)                          [tcp]
  --compress C         none | fp16                                             [none]
  --lan MBIT           run on an emulated LAN, one host per rank, MBIT cap per host (needs root)
  --no-gloo            skip the PyTorch gloo column
  --cpu-prof DIR       write a V8 CPU profile of every rank of ours into DIR
  --help`;

function parseSize(text: string): number {
  const match = /^(\d+)([KM]?)$/i.exec(text.trim());
  if (!match) throw new Error(`cannot read size '${text}': use bytes, or a number with K or M (KiB, MiB)`);
  const unit = match[2]?.toUpperCase() === 'M' ? 1 << 20 : match[2]?.toUpperCase() === 'K' ? 1024 : 1;
  const bytes = Number(match[1]) * unit;
  if (bytes % 4 !== 0 || bytes <= 0) throw new Error(`size ${text} must be a positive multiple of 4 bytes (float32 elements)`);
  return bytes;
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got '${text}'`);
  return value;
}

function loadNote(before: number[], after: number[]): string {
  return `load average ${before[0]!.toFixed(2)} before, ${after[0]!.toFixed(2)} after (1-min; ${os.cpus().length} cores)`;
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      peers: { type: 'string' },
      sizes: { type: 'string' },
      runs: { type: 'string' },
      iters: { type: 'string' },
      warmup: { type: 'string' },
      'chunk-bytes': { type: 'string' },
      'in-flight': { type: 'string' },
      'data-plane': { type: 'string' },
      compress: { type: 'string' },
      lan: { type: 'string' },
      'no-gloo': { type: 'boolean' },
      'cpu-prof': { type: 'string' },
    },
    HELP,
  );
  if (parsed.exitCode !== undefined) return parsed.exitCode;
  const { values } = parsed;
  const peersList = (values.peers ?? '2').split(',').map((p) => positiveInt('peers', p, 2));
  const sizesBytes = (values.sizes ?? '1M,2M,4M,8M,16M,32M,64M').split(',').map(parseSize);
  const lanMbit = values.lan === undefined ? undefined : Number(values.lan);
  if (lanMbit !== undefined && !(lanMbit > 0)) throw new Error(`--lan needs the link cap in Mbit/s, got '${values.lan}'`);
  const runs = positiveInt('runs', values.runs, 3);
  const dataPlanes = (values['data-plane'] ?? 'tcp').split(',') as WorkerConfig['dataPlane'][];
  for (const plane of dataPlanes) {
    if (!DATA_PLANES.includes(plane)) throw new Error(`--data-plane takes ${DATA_PLANES.join(', ')} (comma-separated for several columns), got '${plane}'`);
  }
  const compress = values.compress ?? 'none';
  if (compress !== 'none' && compress !== 'fp16') throw new Error(`--compress must be none or fp16 for this benchmark, got '${compress}'`);
  const chunkList = (values['chunk-bytes'] ?? 'auto').split(',').map((text): WorkerConfig['chunkBytes'] => (text.trim() === 'auto' ? 'auto' : parseSize(text)));
  const inFlightList = (values['in-flight'] ?? '4').split(',').map((n) => positiveInt('in-flight', n, 4));
  const base: Omit<WorkerConfig, 'dataPlane'> = {
    sizesBytes,
    warmup: positiveInt('warmup', values.warmup, lanMbit ? 1 : 3),
    iters: positiveInt('iters', values.iters, lanMbit ? 2 : 10),
    chunkBytes: chunkList[0]!,
    maxInFlight: inFlightList[0]!,
    compress,
  };
  // One column per data plane × chunk × in-flight, all measured in the same runs.
  const variants = dataPlanes.flatMap((dataPlane) =>
    chunkList.flatMap((chunkBytes) =>
      inFlightList.map((maxInFlight) => ({
        name: `ours(${dataPlane}${chunkList.length > 1 ? ` ${chunkText(chunkBytes)}` : ''}${inFlightList.length > 1 ? ` ×${maxInFlight}` : ''})`,
        config: { ...base, dataPlane, chunkBytes, maxInFlight },
      })),
    ),
  );
  if (values['cpu-prof']) process.env.RINGPIPE_BENCH_CPU_PROF = values['cpu-prof'];
  const glooProblem = values['no-gloo'] ? 'skipped (--no-gloo)' : await glooAvailable();

  let lan: Lan | undefined;
  try {
    let placement: Placement = { kind: 'loopback' };
    if (lanMbit !== undefined) {
      const support = await checkLanSupport();
      if (!support.ok) throw new Error(`--lan: ${support.reason}`);
      lan = await createLan({ hosts: Math.max(...peersList), rateMbit: lanMbit });
      placement = { kind: 'lan', hosts: lan.hosts };
    }
    for (const peers of peersList) {
      const ours: Record<string, SizeResult[][]> = {};
      const gloo: SizeResult[][] = [];
      const loadBefore = os.loadavg();
      // A generous deadline: on a 100 Mbit/s LAN 64 MiB at 4 ranks takes ~8 s per all-reduce.
      const totalBytes = sizesBytes.reduce((a, b) => a + b, 0) * (base.iters + base.warmup + 2);
      const timeoutMs = 120_000 + (lanMbit ? (totalBytes * 2 * 8) / (lanMbit * 1e6) * 1000 * 2 : totalBytes / 1e5);
      for (let run = 0; run < runs; run++) {
        // Interleaved, so a burst of load from elsewhere hits every contender alike.
        for (const variant of variants) {
          (ours[variant.name] ??= []).push(await runOurs(peers, variant.config, placement, timeoutMs));
        }
        if (!glooProblem) gloo.push(await runGloo(peers, { ...base, dataPlane: 'tcp' }, placement, timeoutMs));
        process.stderr.write(`peers ${peers}: run ${run + 1}/${runs} done\n`);
      }
      const loadAfter = os.loadavg();
      const columns: TableColumn[] = variants.map((variant) => ({ name: variant.name, results: medianResults(ours[variant.name]!) }));
      if (!glooProblem) columns.push({ name: 'gloo', results: medianResults(gloo) });
      const where = lan ? `emulated LAN, ${peers} hosts, egress capped at ${lanMbit} Mbit/s each` : 'loopback';
      process.stdout.write(
        `\n### ${peers} peers, ${where}\n\n` +
          `float32 sum, chunk ${chunkList.map(chunkText).join(' / ')}, ${inFlightList.join(' / ')} chunks in flight, compress ${compress}, add kernel ${ADD_KERNEL}; ` +
          `median of ${runs} runs × ${base.iters} timed iterations (after ${base.warmup} warm-up); ${loadNote(loadBefore, loadAfter)}\n` +
          (glooProblem ? `gloo: ${glooProblem}\n` : `gloo: PyTorch ${'torch.distributed'} gloo backend, ${PYTORCH_NOTE}\n`) +
          (lanMbit ? `link rate ${(lanMbit / 8).toFixed(2)} MB/s = ${((lanMbit * 1e6) / 8 / 1e9).toFixed(4)} GB/s\n` : '') +
          `\n${formatTable(peers, columns, glooProblem ? undefined : 'gloo', lanMbit ? (lanMbit * 1e6) / 8 : undefined)}\n\n` +
          `Where our time went (${columns[0]!.name}, per rank, per all-reduce):\n\n${formatProfile(columns[0]!)}\n\n` +
          `CPU time per rank and all-reduce (ours: mean over ranks, all threads; gloo: rank 0, getrusage), from the median run:\n\n${formatCpu(columns)}\n`,
      );
    }
  } finally {
    await lan?.destroy();
  }
  return 0;
}

function chunkText(chunk: WorkerConfig['chunkBytes']): string {
  return chunk === 'auto' ? 'auto' : sizeText(chunk);
}

function sizeText(bytes: number): string {
  return bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`;
}

const DATA_PLANES: WorkerConfig['dataPlane'][] = ['tcp-threaded', 'tcp', 'link'];
const PYTORCH_NOTE = 'same sizes/iterations, OMP_NUM_THREADS=1, /usr/bin/python3';

if (isEntryPoint(import.meta.url)) runCommand(main);
