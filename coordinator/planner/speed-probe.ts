/**
 * One process of the planner's sharing probe (measure-sharing.ts starts several): builds the model,
 * then on every "run" line from stdin trains on random data for the given seconds and reports steps,
 * wall and CPU time on stdout, so the planner sees how fast a peer computes when k peers share this
 * machine. Exits when stdin closes. Config: RINGPIPE_SPEED_PROBE (JSON: SpeedProbeConfig).
 */
import { outputKindOf } from '../../peer/trainer/loss.js';
import { createOptimizer } from '../../peer/trainer/optimizer.js';
import { trainStep, type StepContext } from '../../peer/trainer/train-step.js';
import type { Batch } from '../../shared/data/epoch-batches.js';
import type { BackendFlag } from '../../shared/engine/backend-candidates.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { createModel } from '../../shared/models/create-model.js';
import type { OptimizerName } from './optimizer-state.js';

export interface SpeedProbeConfig {
  model: string;
  batchSize: number;
  optimizer: OptimizerName;
  backend: BackendFlag;
  seconds: number;
  inputShape: number[];
  numClasses: number;
}

export interface SpeedProbeReport {
  steps: number;
  wallMs: number;
  cpuMs: number;
  /** Wall time of every step: how much it varies is the host's jitter. */
  stepWallMs: number[];
}

export const SPEED_PROBE_ENV = 'RINGPIPE_SPEED_PROBE';

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

async function main(): Promise<void> {
  const config = JSON.parse(process.env[SPEED_PROBE_ENV] ?? '') as SpeedProbeConfig;
  await selectBackend({ force: config.backend });
  const model = await createModel(config.model, { inputShape: config.inputShape, numClasses: config.numClasses, seed: 42 });
  const ctx: StepContext = { model, optimizer: createOptimizer({ optimizer: config.optimizer, learningRate: 1e-3 }), inputShape: config.inputShape, numClasses: config.numClasses, outputKind: outputKindOf(model) };
  const valuesPerSample = config.inputShape.reduce((a, b) => a * b, 1);
  const batch: Batch = {
    xs: Float32Array.from({ length: config.batchSize * valuesPerSample }, (_, i) => (i % 251) / 251),
    labels: Int32Array.from({ length: config.batchSize }, (_, i) => i % config.numClasses),
    size: config.batchSize,
  };
  const step = () => trainStep(ctx, batch);
  for (let i = 0; i < 2; i++) await step();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  let pending = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) {
    pending += chunk as string;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const command = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (command !== 'run') continue;
      const wall = performance.now();
      const cpu = cpuNowMs();
      const stepWallMs: number[] = [];
      while (performance.now() - wall < config.seconds * 1000) {
        const started = performance.now();
        await step();
        stepWallMs.push(performance.now() - started);
      }
      const report: SpeedProbeReport = { steps: stepWallMs.length, wallMs: performance.now() - wall, cpuMs: cpuNowMs() - cpu, stepWallMs };
      process.stdout.write(`${JSON.stringify(report)}\n`);
    }
  }
  model.dispose();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`speed probe: ${(error as Error).stack}\n`);
      process.exit(1);
    },
  );
}
