/**
 * One rank of `npm run bench:allreduce`: joins the ring through the launcher, then for every size
 * runs warm-up and timed all-reduces (float32 sum) and a separate correctness pass, and reports the
 * timings to the launcher. Started by scripts/bench/allreduce.ts, never by hand.
 */
import { joinRingFromLauncher, rankFromEnv, reportToLauncher, runLaunchedRank } from '../../peer/allreduce/launch/join-from-launcher.js';
import { allocateRingBuffer, RingCollective } from '../../peer/allreduce/ring-collective.js';
import type { WireCodec } from '../../peer/allreduce/wire-codec.js';
import { Fp16Codec } from '../../peer/compression/fp16-codec.js';

export interface WorkerConfig {
  sizesBytes: number[];
  warmup: number;
  iters: number;
  /** 'auto': the ring's default (RingCollective's automatic chunk). */
  chunkBytes: number | 'auto';
  maxInFlight: number;
  compress: 'none' | 'fp16';
  dataPlane: 'tcp' | 'tcp-threaded' | 'link';
}

export interface SizeReport {
  bytes: number;
  /** Seconds per all-reduce on this rank (timed loop / iters). */
  seconds: number;
  /** Every element equal to the exact expected sum after the correctness pass. */
  correct: boolean;
  maxError: number;
  /** The chunk the ring used for this size. */
  chunkBytes: number;
  receiveWaitMs: number;
  reduceMs: number;
  /** CPU time of this process per all-reduce (user and kernel), to tell waiting from working. */
  userCpuMs: number;
  systemCpuMs: number;
  /** Context switches of this process per all-reduce: voluntary (waited) and involuntary (preempted). */
  voluntarySwitches: number;
  involuntarySwitches: number;
}

/** Values whose sum over ranks is exact in float32 for any order: small integers. */
function fillInput(buffer: Float32Array, rank: number): void {
  for (let i = 0; i < buffer.length; i++) buffer[i] = (rank + 1) * ((i % 13) + 1);
}

function check(buffer: Float32Array, worldSize: number): number {
  const ranksSum = (worldSize * (worldSize + 1)) / 2;
  let maxError = 0;
  for (let i = 0; i < buffer.length; i++) maxError = Math.max(maxError, Math.abs(buffer[i]! - ranksSum * ((i % 13) + 1)));
  return maxError;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.RINGPIPE_BENCH_CONFIG ?? '') as WorkerConfig;
  const { rank, worldSize } = rankFromEnv();
  const chunkBytes = config.chunkBytes === 'auto' ? undefined : config.chunkBytes;
  const frameLimit = Math.max(chunkBytes ?? 0, 1 << 20) * 2;
  const ring = await joinRingFromLauncher(
    { cluster: 'bench-allreduce', limits: { maxTensorBytes: frameLimit, receiveWindowBytes: frameLimit * 4 } },
    { dataPlane: config.dataPlane, timeoutMs: 60_000, depth: config.maxInFlight, ...(config.dataPlane === 'tcp-threaded' && chunkBytes ? { maxFrameBytes: chunkBytes } : {}) },
  );
  const collective = new RingCollective(ring.membership, { ...(chunkBytes ? { chunkBytes } : {}), maxInFlight: config.maxInFlight, timeoutMs: 60_000 });
  const codec: WireCodec | undefined = config.compress === 'fp16' ? new Fp16Codec() : undefined;
  const options = codec ? { codec } : {};
  const barrier = new Float32Array(1);
  // One buffer of the largest size, viewed per size: the memory is touched once, as a training
  // loop's reused gradient buffer would be (fresh memory is slow on first touch, DESIGN §3).
  // Shared memory, so the threaded data plane sends straight from it (as the DP trainer's fused buffer).
  const largest = allocateRingBuffer(Math.max(...config.sizesBytes) / 4);
  largest.fill(1);
  for (const bytes of config.sizesBytes) {
    const buffer = largest.subarray(0, bytes / 4);
    for (let i = 0; i < config.warmup; i++) await collective.allReduce(buffer, options);
    await collective.allReduce(barrier);
    let receiveWaitMs = 0;
    let reduceMs = 0;
    const cpuBefore = process.cpuUsage();
    const usageBefore = process.resourceUsage();
    const started = performance.now();
    for (let i = 0; i < config.iters; i++) {
      const stats = await collective.allReduce(buffer, options);
      receiveWaitMs += stats.receiveWaitMs;
      reduceMs += stats.reduceMs;
    }
    const seconds = (performance.now() - started) / 1000 / config.iters;
    const cpu = process.cpuUsage(cpuBefore);
    const usage = process.resourceUsage();
    fillInput(buffer, rank);
    await collective.allReduce(buffer, options);
    const maxError = check(buffer, worldSize);
    // fp16 carries 11 significant bits: sums up to 13·N(N+1)/2 are exact only for small N.
    const tolerance = config.compress === 'fp16' ? (13 * worldSize * (worldSize + 1)) / 2 / 1024 : 0;
    const report: SizeReport = { bytes, seconds, correct: maxError <= tolerance, maxError, chunkBytes: collective.chunkElementsFor(buffer.length, codec) * 4, receiveWaitMs: receiveWaitMs / config.iters, reduceMs: reduceMs / config.iters,
      userCpuMs: cpu.user / 1000 / config.iters, systemCpuMs: cpu.system / 1000 / config.iters,
      voluntarySwitches: (usage.voluntaryContextSwitches - usageBefore.voluntaryContextSwitches) / config.iters,
      involuntarySwitches: (usage.involuntaryContextSwitches - usageBefore.involuntaryContextSwitches) / config.iters };
    reportToLauncher('size', report);
  }
  await ring.close();
}

runLaunchedRank(main);
