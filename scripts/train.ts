/**
 * `npm run train -- [flags]`: trains one model in this process (no cluster), evaluates it on the
 * test set and saves it as a TensorFlow.js LayersModel.
 */
import path from 'node:path';
import { createProgress } from '../shared/cli/progress.js';
import { jobFromFlags, TRAINING_FLAGS_HELP, trainingFlagOptions } from '../shared/cli/training-flags.js';
import { describeSelection, selectBackend } from '../shared/engine/select-backend.js';
import { createLogger } from '../shared/log/logger.js';
import { describeZoo } from '../shared/models/zoo.js';
import { trainLocally } from '../peer/trainer/local-training.js';
import { isEntryPoint, parseCommandLine, runCommand } from '../shared/cli/command.js';

const HELP = `Usage: npm run train -- [flags]

Trains a model on MNIST in this process and saves it (TensorFlow.js LayersModel format).

${TRAINING_FLAGS_HELP}
  --out DIR           where to save model.json + weights.bin        [runs/train-<time>/model]
  --help              this text

Models:
${describeZoo().replace(/^/gm, '  ')}`;

export async function main(argv: string[]): Promise<number> {
  const log = createLogger('train');
  const parsed = parseCommandLine(argv, { ...trainingFlagOptions, out: { type: 'string' } }, HELP);
  if (parsed.exitCode !== undefined) return parsed.exitCode;
  const { values } = parsed;
  const job = await jobFromFlags(values);
  const selection = await selectBackend(job.backend === 'auto' ? {} : { force: job.backend });
  log.info(describeSelection(selection), `tensor backend: ${selection.flag}`);

  const saveDir = values.out ?? path.join('runs', `train-${new Date().toISOString().replace(/[:.]/g, '-')}`, 'model');
  log.info({ job }, 'training');
  let progress: ReturnType<typeof createProgress> | undefined;
  let smoothedSpeed = 0; // exponential moving average: single steps are too jumpy to read
  const result = await trainLocally(job, {
    saveDir,
    onStep(report) {
      progress ??= createProgress(report.totalSteps, `${job.model}`, (fields) => log.info(fields, 'progress'));
      smoothedSpeed = smoothedSpeed === 0 ? report.samplesPerSecond : 0.9 * smoothedSpeed + 0.1 * report.samplesPerSecond;
      progress.update(report.step, { loss: report.loss.toFixed(4), speed: Math.round(smoothedSpeed) });
    },
  });
  progress?.stop();
  log.info({ ...result }, 'done');
  process.stdout.write(
    `model ${job.model} (${result.parameters.toLocaleString('en')} parameters) on ${selection.flag}: ` +
      `${result.steps} steps in ${result.trainSeconds.toFixed(1)} s (${Math.round(result.samplesPerSecond)} samples/s)\n` +
      `test accuracy ${(result.test.accuracy * 100).toFixed(2)}% (loss ${result.test.loss.toFixed(4)}, ${result.test.samples} samples)\n` +
      `saved to ${result.savedTo}\n`,
  );
  return 0;
}

if (isEntryPoint(import.meta.url)) runCommand(main);
