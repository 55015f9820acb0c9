/**
 * `npm run bench:train`: training samples/s of the zoo models on every tensor backend this machine
 * has, median of several timed runs, beside PyTorch CPU (one thread) in the same run when Debian's
 * python3-torch is installed. Each measurement runs in its own process.
 *
 *   npm run bench:train -- [--backends wasm,cpu] [--models mlp,cnn] [--batch 128] [--runs 5] [--steps 20]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BACKEND_FLAGS } from '../../shared/engine/backend-candidates.js';

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: BACKEND_FLAGS.join(',') },
    models: { type: 'string', default: 'mlp,cnn' },
    batch: { type: 'string', default: '128' },
    runs: { type: 'string', default: '5' },
    steps: { type: 'string', default: '20' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});

interface Measurement {
  backend: string;
  model: string;
  samplesPerSecond?: number[];
  error?: string;
}

const here = path.dirname(new URL(import.meta.url).pathname);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function lastJsonLine(stdout: string): Record<string, unknown> | undefined {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
}

function measureOurs(backend: string, model: string): Measurement {
  // The pure-JS cpu backend needs about a minute per CNN step: time a single step there.
  const slow = backend === 'cpu' && model === 'cnn';
  const args = ['--import', 'tsx', path.join(here, 'train-speed-worker.ts'), '--backend', backend, '--model', model, '--batch', values.batch];
  args.push(...(slow ? ['--warmup', '0', '--steps', '1', '--runs', '1'] : ['--warmup', '3', '--steps', values.steps, '--runs', values.runs]));
  const child = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, RINGPIPE_LOG_LEVEL: 'warn' }, timeout: 15 * 60_000 });
  const result = lastJsonLine(child.stdout);
  if (child.status !== 0 || !result) {
    const reason = (child.stderr.match(/(?:Error|error): (.*)/)?.[1] ?? child.stderr.trim().split('\n').pop() ?? 'failed').slice(0, 160);
    return { backend, model, error: reason };
  }
  return { backend, model, samplesPerSecond: result.samplesPerSecond as number[] };
}

function measureTorch(models: string[]): { results: Measurement[]; note?: string } {
  if (!existsSync(values.python)) return { results: [], note: `${values.python} not found: PyTorch column skipped` };
  const probe = spawnSync(values.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return { results: [], note: `PyTorch not importable from ${values.python} (apt-get install python3-torch): column skipped` };
  const child = spawnSync(values.python, [path.join(here, 'torch_train_speed.py'), values.batch, '3', values.steps, values.runs, ...models], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  if (child.status !== 0) return { results: [], note: `PyTorch run failed: ${child.stderr.trim().split('\n').pop()}` };
  const results = child.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { model: string; samplesPerSecond: number[]; torch: string })
    .map((r) => ({ backend: `pytorch ${r.torch}`, model: r.model, samplesPerSecond: r.samplesPerSecond }));
  return { results };
}

const models = values.models.split(',');
const backends = values.backends.split(',');
const rows: Measurement[] = [];
for (const model of models) {
  for (const backend of backends) {
    process.stderr.write(`measuring ${model} on ${backend}…\n`);
    rows.push(measureOurs(backend, model));
  }
}
process.stderr.write('measuring PyTorch…\n');
const torch = measureTorch(models);

const torchMedian = new Map(torch.results.map((r) => [r.model, median(r.samplesPerSecond!)]));
const table = [
  '| model | engine | samples/s (median) | runs | × PyTorch |',
  '|---|---|---:|---:|---:|',
  ...[...rows, ...torch.results].map((r) => {
    if (!r.samplesPerSecond) return `| ${r.model} | ${r.backend} | unavailable: ${r.error} | – | – |`;
    const m = median(r.samplesPerSecond);
    const base = torchMedian.get(r.model);
    return `| ${r.model} | ${r.backend} | ${m.toFixed(1)} | ${r.samplesPerSecond.length} | ${base ? (m / base).toFixed(2) : '–'} |`;
  }),
];
process.stdout.write(`batch ${values.batch}, Adam, ${values.runs} runs × ${values.steps} steps after 3 warm-up steps (cpu cnn: 1 step)\n${table.join('\n')}\n`);
if (torch.note) process.stdout.write(`note: ${torch.note}\n`);
