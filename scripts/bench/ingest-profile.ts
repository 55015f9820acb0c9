/**
 * Where the input pipeline's CPU time goes, thread by thread (no free cores needed: CPU time, not wall time).
 *
 *   npx tsx scripts/bench/ingest-profile.ts [--images 1500] [--batches 40] [--warmup 4] [--workers 2] [--rounds 2] [--parallel-only]
 *   … --main-profile FILE: a CPU profile of the main thread while it pulls the parallel pipeline's batches
 *   node --cpu-prof --cpu-prof-dir=DIR --import tsx scripts/bench/ingest-profile.ts …   (one profile per thread)
 *
 * Same dataset and pipeline as `npm run bench:ingest`. For inline and parallel pipelines it prints
 * the CPU time per sample of the whole process and of its main thread (from /proc; and its event
 * loop's busy time, which a busy machine inflates): what the trainer's thread still pays for ingestion;
 * then every thread's CPU per sample (workers, and V8's GC/compiler helpers), from /proc/self/task.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { imageFolderSource, type ImageFolderSource } from '../../shared/data/index.js';
import { loadMnist } from '../../shared/data/mnist.js';
import { digitImageBatches, writeDigitImages } from './ingest-images.js';

const { values: flags } = parseArgs({ options: { images: { type: 'string', default: '1500' }, batches: { type: 'string', default: '40' }, workers: { type: 'string', default: '2' }, batch: { type: 'string', default: '64' }, rounds: { type: 'string', default: '2' }, 'parallel-only': { type: 'boolean', default: false }, 'main-profile': { type: 'string' }, warmup: { type: 'string', default: '4' } } });
const batches = Number(flags.batches);
const batchSize = Number(flags.batch);

/** Name and CPU ms so far (utime + stime, in 10 ms ticks) of thread `tid` of this process, from /proc. */
function taskCpu(tid: string | number): { name: string; ms: number } {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { name, ms: (Number(fields[11]) + Number(fields[12])) * 10 };
}

/** CPU ms of this process's main thread so far. */
function mainThreadCpuMs(): number {
  return taskCpu(process.pid).ms;
}

/** CPU ms per thread of this process (name from /proc comm, id), for the per-thread breakdown. */
function threadCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const { name, ms } = taskCpu(tid);
      out.set(`${name}#${tid}`, ms);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

async function measure(source: ImageFolderSource, parallel: number): Promise<string> {
  const iterator = digitImageBatches(source, batchSize, parallel)
    .prefetch(parallel > 0 ? 4 : 0)
    .iterate();
  try {
    for (let i = 0; i < Number(flags.warmup); i++) await iterator.next();
    const profiling = flags['main-profile'] && parallel > 0 ? new Session() : undefined;
    if (profiling) {
      profiling.connect();
      await profiling.post('Profiler.enable');
      await profiling.post('Profiler.start');
    }
    const cpu = process.cpuUsage();
    const mainCpu = mainThreadCpuMs();
    const threadsBefore = threadCpuMs();
    const elu = performance.eventLoopUtilization();
    const started = performance.now();
    for (let i = 0; i < batches; i++) await iterator.next();
    const wall = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const main = performance.eventLoopUtilization(elu);
    const mainCpuMs = mainThreadCpuMs() - mainCpu;
    const threads = [...threadCpuMs()].map(([name, ms]) => [name, ms - (threadsBefore.get(name) ?? 0)] as const).filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]);
    const samples = batches * batchSize;
    if (profiling) {
      const { profile } = await profiling.post('Profiler.stop');
      writeFileSync(flags['main-profile']!, JSON.stringify(profile));
      profiling.disconnect();
    }
    return `parallel ${parallel}: process CPU ${((used.user + used.system) / 1000 / samples).toFixed(3)} ms/sample (user ${(used.user / 1000 / samples).toFixed(3)}, sys ${(used.system / 1000 / samples).toFixed(3)}), main thread CPU ${(mainCpuMs / samples).toFixed(3)} ms/sample (busy ${(main.active / samples).toFixed(3)}), wall ${(wall / samples).toFixed(3)} ms/sample; threads (ms/sample): ${threads.map(([name, ms]) => `${name} ${(ms / samples).toFixed(3)}`).join(', ')}`;
  } finally {
    await iterator.close();
  }
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-ingest-profile-'));
try {
  writeDigitImages(await loadMnist('train'), Number(flags.images), dir);
  const source = await imageFolderSource(dir);
  for (let round = 0; round < Number(flags.rounds); round++) {
    if (!flags['parallel-only']) process.stdout.write(`${await measure(source, 0)}\n`);
    process.stdout.write(`${await measure(source, Number(flags.workers))}\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
