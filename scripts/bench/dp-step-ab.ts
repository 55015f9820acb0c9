/**
 * Step time of the data-parallel exchanges side by side, in one pair of processes:
 *
 *   npx tsx scripts/bench/dp-step-ab.ts            # plain, sharded, overlapped 0.5 and 1 MiB buckets
 *   DP_AB_MODES=plain,0.25 DP_AB_STEPS=600 npx tsx scripts/bench/dp-step-ab.ts
 *
 * The modes take turns every DP_AB_BLOCK (10) steps of the same training run (mlp, global batch
 * DP_AB_BATCH = 512, Adam 0.002, tcp plane), so a machine whose speed drifts by ±10% within minutes
 * (this one) hits every mode alike; separate `bench:dp` runs of each could not tell 1–2 ms apart.
 * Prints each rank's mean, median and 90th-percentile step and its CPU per step, per mode.
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { launchRing } from '../../peer/allreduce/launch/launch-ring.js';
import type { ModeStats } from './dp-step-ab-worker.js';

const WORKER = path.join(import.meta.dirname, 'dp-step-ab-worker.ts');
const peers = Number(process.env.DP_AB_PEERS ?? 2);
const outcomes = await launchRing({
  worldSize: peers,
  timeoutMs: 900_000,
  spawn: (_rank, env) => spawn(process.execPath, ['--import', 'tsx', WORKER], { env: { ...process.env, ...env, RINGPIPE_LOG_LEVEL: 'warn' }, stdio: ['pipe', 'pipe', 'pipe'] }),
});
const lines = ['| rank | mode | steps | mean ms | median ms | p90 ms | CPU ms/step |', '|--:|---|--:|--:|--:|--:|--:|'];
for (const outcome of outcomes) {
  const report = outcome.reports.find((r) => r.kind === 'ab')?.data as { rank: number; stats: ModeStats[] } | undefined;
  if (!report) throw new Error(`a rank reported no step times${outcome.failure ? `: ${outcome.failure}` : ''}`);
  for (const s of report.stats) lines.push(`| ${report.rank} | ${s.mode} | ${s.steps} | ${s.meanMs.toFixed(1)} | ${s.medianMs.toFixed(1)} | ${s.p90Ms.toFixed(1)} | ${s.cpuMeanMs.toFixed(1)} |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
