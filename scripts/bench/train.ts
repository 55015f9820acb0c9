/**
 * `npm run bench:train`: training samples/s of the zoo models on every tensor backend this machine
 * has, median of several timed runs, beside PyTorch CPU (one thread) in the same run when Debian's
 * python3-torch is installed.
 *
 *   npm run bench:train -- [--backends wasm,cpu] [--models mlp,cnn] [--batch 128] [--runs 5] [--steps 20]
 *                          [--no-fast-kernels]
 *
 * Each engine (and PyTorch) runs in its own long-lived process, set up and warmed up once; the
 * timed runs are then interleaved round by round, in a rotating order, so a change in machine
 * load hits every engine alike. `--no-fast-kernels` adds wasm rows with RINGPIPE_FAST_KERNELS=0
 * (the stock wasm kernels, plus only the kernels wasm lacks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
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
    'no-fast-kernels': { type: 'boolean', default: false },
  },
});

const here = path.dirname(new URL(import.meta.url).pathname);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const SETUP_TIMEOUT_MS = 5 * 60_000;
const RUN_TIMEOUT_MS = 15 * 60_000;

/** A worker process that answers one JSON line per request on stdout. */
class LineWorker {
  private readonly lines: string[] = [];
  private waiting: ((line: string | undefined) => void) | undefined;
  private stderr = '';
  private exited = false;

  constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return; // banners and logs
      if (this.waiting) {
        const resolve = this.waiting;
        this.waiting = undefined;
        resolve(line);
      } else this.lines.push(line);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    child.on('exit', () => {
      this.exited = true;
      this.waiting?.(undefined);
      this.waiting = undefined;
    });
  }

  /** The next JSON line, or an error naming the worker's last words. */
  async next(timeoutMs: number): Promise<Record<string, unknown>> {
    const line =
      this.lines.shift() ??
      (this.exited
        ? undefined
        : await new Promise<string | undefined>((resolve) => {
            const timer = setTimeout(() => {
              this.waiting = undefined;
              resolve(undefined);
            }, timeoutMs);
            this.waiting = (l) => {
              clearTimeout(timer);
              resolve(l);
            };
          }));
    if (line === undefined) {
      const reason = this.stderr.match(/(?:Error|error): (.*)/)?.[1] ?? this.stderr.trim().split('\n').pop() ?? 'no answer';
      throw new Error((this.exited ? reason : `no answer within ${timeoutMs / 1000} s`).slice(0, 160));
    }
    return JSON.parse(line) as Record<string, unknown>;
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  close(): void {
    this.child.stdin!.end();
    if (!this.exited) setTimeout(() => this.child.kill(), 10_000).unref();
  }
}

interface Engine {
  backend: string;
  model: string;
  /** How many timed runs it takes (the pure-JS cpu CNN: one single step). */
  runs: number;
  samplesPerSecond: number[];
  cpuMsPerStep: number[];
  error?: string;
  measure(): Promise<{ samplesPerSecond: number; cpuMsPerStep: number }>;
}

function ourEngine(backend: string, model: string, fastKernels: boolean): { engine: Engine; ready: Promise<void>; close(): void } {
  // The pure-JS cpu backend needs about a minute per CNN step: time a single step there.
  const slow = backend === 'cpu' && model === 'cnn';
  const args = ['--import', 'tsx', path.join(here, 'train-speed-worker.ts'), '--serve', '--backend', backend, '--model', model, '--batch', values.batch];
  args.push(...(slow ? ['--warmup', '0', '--steps', '1'] : ['--warmup', '3', '--steps', values.steps]));
  const env = { ...process.env, RINGPIPE_LOG_LEVEL: 'warn', ...(fastKernels ? {} : { RINGPIPE_FAST_KERNELS: '0' }) };
  const worker = new LineWorker(spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] }));
  const engine: Engine = {
    backend: fastKernels ? backend : `${backend}, RINGPIPE_FAST_KERNELS=0`,
    model,
    runs: slow ? 1 : Number(values.runs),
    samplesPerSecond: [],
    cpuMsPerStep: [],
    async measure() {
      worker.send('run');
      const answer = await worker.next(RUN_TIMEOUT_MS);
      return { samplesPerSecond: answer.samplesPerSecond as number, cpuMsPerStep: answer.cpuMsPerStep as number };
    },
  };
  const ready = worker.next(SETUP_TIMEOUT_MS).then(() => undefined);
  return { engine, ready, close: () => worker.close() };
}

function torchEngines(models: string[]): { engines: Engine[]; ready: Promise<void>; close(): void; note?: string } {
  if (!existsSync(values.python)) return { engines: [], ready: Promise.resolve(), close: () => {}, note: `${values.python} not found: PyTorch column skipped` };
  const child = spawn(values.python, [path.join(here, 'torch_train_speed.py'), '--serve', values.batch, '3', values.steps, ...models], {
    env: { ...process.env, OMP_NUM_THREADS: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const worker = new LineWorker(child);
  const engines = models.map<Engine>((model) => ({
    backend: 'pytorch',
    model,
    runs: Number(values.runs),
    samplesPerSecond: [],
    cpuMsPerStep: [],
    async measure() {
      worker.send(`run ${model}`);
      const answer = await worker.next(RUN_TIMEOUT_MS);
      return { samplesPerSecond: (answer.samplesPerSecond as number[])[0]!, cpuMsPerStep: (answer.cpuMsPerStep as number[])[0]! };
    },
  }));
  const ready = worker.next(SETUP_TIMEOUT_MS).then((answer) => {
    for (const engine of engines) engine.backend = `pytorch ${answer.torch as string}`;
  });
  return { engines, ready, close: () => worker.close() };
}

const models = values.models.split(',');
const backends = values.backends.split(',');
const ours: Engine[] = [];
const closers: (() => void)[] = [];
const setups: Promise<void>[] = [];
for (const model of models) {
  for (const backend of backends) {
    for (const fastKernels of backend === 'wasm' && values['no-fast-kernels'] ? [true, false] : [true]) {
      const { engine, ready, close } = ourEngine(backend, model, fastKernels);
      ours.push(engine);
      closers.push(close);
      setups.push(ready.catch((err: Error) => void (engine.error = err.message)));
    }
  }
}
const torch = torchEngines(models);
closers.push(torch.close);
let torchNote = torch.note;
setups.push(torch.ready.catch((err: Error) => void (torchNote = `PyTorch run failed: ${err.message}`)));
process.stderr.write(`setting up ${ours.length} engines${torch.engines.length ? ' and PyTorch' : ''} (model, batches, warm-up)…\n`);
await Promise.all(setups);

const engines = [...ours, ...(torchNote === undefined ? torch.engines : [])];
const loads: number[] = [];
for (let round = 0; round < Number(values.runs); round++) {
  const order = engines.map((_, i) => engines[(i + round) % engines.length]!);
  for (const engine of order) {
    if (engine.error !== undefined || engine.samplesPerSecond.length >= engine.runs) continue;
    process.stderr.write(`round ${round + 1}/${values.runs}: ${engine.model} on ${engine.backend}…\n`);
    loads.push(os.loadavg()[0]!);
    try {
      const { samplesPerSecond, cpuMsPerStep } = await engine.measure();
      engine.samplesPerSecond.push(samplesPerSecond);
      engine.cpuMsPerStep.push(cpuMsPerStep);
    } catch (err) {
      engine.error = (err as Error).message;
    }
  }
}
for (const close of closers) close();

const torchMedian = new Map(torch.engines.filter((e) => e.samplesPerSecond.length > 0).map((e) => [e.model, median(e.samplesPerSecond)]));
const table = [
  '| model | engine | samples/s (median) | runs | × PyTorch |',
  '|---|---|---:|---:|---:|',
  ...engines.map((r) => {
    if (r.samplesPerSecond.length === 0) return `| ${r.model} | ${r.backend} | unavailable: ${r.error ?? 'no run'} | – | – |`;
    const m = median(r.samplesPerSecond);
    const base = torchMedian.get(r.model);
    return `| ${r.model} | ${r.backend} | ${m.toFixed(1)} | ${r.samplesPerSecond.length} | ${base ? (m / base).toFixed(2) : '–'} |`;
  }),
];
// The same runs by CPU time per step: what each engine costs, whatever share of the cores the
// machine's other work left it during its runs.
const torchCpu = new Map(torch.engines.filter((e) => e.cpuMsPerStep.length > 0).map((e) => [e.model, median(e.cpuMsPerStep)]));
const cpuTable = [
  '| model | engine | CPU ms / step (median) | × PyTorch (by CPU time) |',
  '|---|---|---:|---:|',
  ...engines
    .filter((r) => r.cpuMsPerStep.length > 0)
    .map((r) => {
      const m = median(r.cpuMsPerStep);
      const base = torchCpu.get(r.model);
      return `| ${r.model} | ${r.backend} | ${m.toFixed(1)} | ${base ? (base / m).toFixed(2) : '–'} |`;
    }),
];
process.stdout.write(`batch ${values.batch}, Adam, ${values.runs} runs × ${values.steps} steps after 3 warm-up steps (cpu cnn: 1 step), engines interleaved run by run\n${table.join('\n')}\n\n${cpuTable.join('\n')}\n`);
if (torchNote) process.stdout.write(`note: ${torchNote}\n`);
if (loads.length > 0) process.stdout.write(`note: load average during the runs ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ${os.availableParallelism()} cores\n`);
