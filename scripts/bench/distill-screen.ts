/**
 * `npm run bench:distill-screen`: chooses the distillation settings on a validation split, never on
 * the test set. In this process, on one core: trains the benchmark's teacher once on the training
 * images before the validation split (scoring every epoch's teacher), then trains the student alone
 * and distilled under each candidate setting and scores them on the validation images only. The
 * test set is not loaded. Results go to <out>/screen.json as they come (a rerun skips rows done).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { StudentTraining } from '../../coordinator/distillation/distillation-messages.js';
import { DISTILL_DEFAULTS, TEACHER_RECIPE, VALIDATION_SPLIT } from '../../coordinator/distillation/round-defaults.js';
import { emptyTable, writeTopK, type SoftTargetTable } from '../../coordinator/distillation/soft-target-table.js';
import { trainStudent } from '../../peer/distillation/student-training.js';
import { evaluate } from '../../peer/trainer/evaluate.js';
import { createOptimizer } from '../../peer/trainer/optimizer.js';
import { gatherBatch } from '../../shared/data/epoch-batches.js';
import { loadMnist, type ImageDataset } from '../../shared/data/mnist.js';
import { selectBackend } from '../../shared/engine/select-backend.js';
import { loadModel, saveModel } from '../../shared/models/file-io.js';
import { buildZooModel } from '../../shared/models/zoo.js';
import { sliceImages, trainTeacher } from './distill-teacher.js';

/** One candidate: which teacher (epoch, or "ens" = mean logits of epochs 2 and 3), the budget, the soft targets. */
interface Candidate {
  teacher: string;
  transferSamples: number;
  steps: number;
  topK: number;
  temperature: number;
  alpha: number;
}

const D = DISTILL_DEFAULTS;
const BASE: Candidate = { teacher: 'e3', transferSamples: 2000, steps: 1880, topK: 6, temperature: 16, alpha: 0.95 };
/** One dimension at a time from BASE (the old test-chosen settings), most informative first. */
const GRID: Candidate[] = [
  BASE,
  { ...BASE, teacher: 'e2' },
  { ...BASE, topK: 10 },
  { ...BASE, temperature: 8 },
  { ...BASE, alpha: 1 },
  { ...BASE, alpha: 0.9 },
  { ...BASE, transferSamples: 3000 },
  { ...BASE, steps: 940 },
  { ...BASE, transferSamples: 1000 },
  { ...BASE, temperature: 4 },
  { ...BASE, teacher: 'ens' },
  { ...BASE, teacher: 'ens', topK: 10 },
];

const keyOf = (c: Candidate, alone: boolean): string =>
  alone ? `alone n${c.transferSamples} s${c.steps}` : `${c.teacher} n${c.transferSamples} s${c.steps} k${c.topK} T${c.temperature} a${c.alpha}`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, strict: true, options: { seed: { type: 'string' }, out: { type: 'string' }, only: { type: 'string' }, extra: { type: 'string' } } });
  const seed = Number(values.seed ?? 101);
  const out = values.out ?? path.join('runs', 'distill-validation');
  await mkdir(out, { recursive: true });
  await selectBackend({});
  const train = await loadMnist('train');
  const validation = sliceImages(train, VALIDATION_SPLIT.start, VALIDATION_SPLIT.end);
  const inputShape = [train.height, train.width, train.channels];
  const resultsFile = path.join(out, `screen-seed-${seed}.json`);
  const results: Record<string, number> = JSON.parse(await readFile(resultsFile, 'utf8').catch(() => '{}')) as Record<string, number>;
  const record = async (key: string, value: number): Promise<void> => {
    results[key] = value;
    await writeFile(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`${key}: ${(value * 100).toFixed(2)}%\n`);
  };
  let grid = GRID;
  if (values.extra) grid = [...grid, ...(JSON.parse(values.extra) as Partial<Candidate>[]).map((c) => ({ ...BASE, ...c }))];
  // --only 'KEY|KEY…': just these candidates (keys as printed), e.g. to repeat the best under another seed.
  if (values.only) grid = grid.filter((c) => values.only!.split('|').includes(keyOf(c, false)));

  // Teacher logits on the largest transfer set screened, for each teacher epoch (cached as files).
  const transferMax = Math.max(...grid.map((c) => c.transferSamples));
  const logits = new Map<string, Float32Array>();
  // The teacher does not depend on the student's seed: every seed's screening shares it.
  const logitFile = (name: string): string => path.join(out, `teacher-${name}-logits.bin`);
  const teacherFile = path.join(out, 'teachers.json');
  const teachers: Record<string, number> = JSON.parse(await readFile(teacherFile, 'utf8').catch(() => '{}')) as Record<string, number>;
  for (const name of ['e2', 'e3']) {
    const cached = await readFile(logitFile(name)).catch(() => undefined);
    if (cached && teachers[name] !== undefined && cached.byteLength >= transferMax * train.numClasses * 4) {
      logits.set(name, new Float32Array(cached.buffer, cached.byteOffset, cached.byteLength / 4));
      results[`teacher ${name}`] = teachers[name];
    }
  }
  if (logits.size < 2) {
    process.stdout.write(`teacher: ${TEACHER_RECIPE.model} on the first ${TEACHER_RECIPE.trainImages} training images, ${TEACHER_RECIPE.epochs} epochs…\n`);
    const began = performance.now();
    const teacher = await trainTeacher(train, { ...TEACHER_RECIPE }, async (epoch, model) => {
      if (epoch < 2) return;
      const name = `e${epoch}`;
      const values = await predictLogits(model, train, transferMax, inputShape);
      logits.set(name, values);
      await writeFile(logitFile(name), values);
      await saveModel(model, path.join(out, `teacher-${name}`));
      teachers[name] = (await evaluate(model, validation, { batchSize: 1000, outputKind: 'logits', inputShape })).accuracy;
      await writeFile(teacherFile, `${JSON.stringify(teachers, null, 2)}\n`);
      await record(`teacher ${name}`, teachers[name]);
    }, (step, total) => process.stderr.write(`  teacher step ${step}/${total} (${((performance.now() - began) / 1000).toFixed(0)} s)\n`));
    teacher.dispose();
  }
  const e2 = logits.get('e2')!;
  const e3 = logits.get('e3')!;
  logits.set('ens', e3.map((v, i) => (v + e2[i]!) / 2));
  if (teachers.ens === undefined) {
    // The ensemble's own validation accuracy: the mean of both checkpoints' logits.
    const [m2, m3] = [await loadModel(path.join(out, 'teacher-e2')), await loadModel(path.join(out, 'teacher-e3'))];
    const [v2, v3] = [await predictLogits(m2, validation, validation.count, inputShape), await predictLogits(m3, validation, validation.count, inputShape)];
    m2.dispose();
    m3.dispose();
    const c = validation.numClasses;
    let hits = 0;
    for (let i = 0; i < validation.count; i++) {
      let best = 0;
      for (let j = 1; j < c; j++) if (v2[i * c + j]! + v3[i * c + j]! > v2[i * c + best]! + v3[i * c + best]!) best = j;
      if (best === validation.labels[i]) hits++;
    }
    teachers.ens = hits / validation.count;
    await writeFile(teacherFile, `${JSON.stringify(teachers, null, 2)}\n`);
  }
  results['teacher ens'] = teachers.ens;

  for (const candidate of grid) {
    for (const alone of [true, false]) {
      const key = keyOf(candidate, alone);
      if (results[key] !== undefined) continue;
      const began = performance.now();
      const table = alone ? undefined : tableOf(logits.get(candidate.teacher)!, candidate, train.numClasses);
      const accuracy = await screenStudent(train, validation, inputShape, seed, candidate, alone ? 0 : candidate.alpha, table);
      process.stderr.write(`  ${key}: ${((performance.now() - began) / 1000).toFixed(0)} s\n`);
      await record(key, accuracy);
    }
  }
  process.stdout.write(`\n${formatScreen(results, grid)}\n`);
}

async function predictLogits(model: tf.LayersModel, data: ImageDataset, count: number, inputShape: number[]): Promise<Float32Array> {
  const all = new Float32Array(count * data.numClasses);
  for (let from = 0; from < count; from += 500) {
    const to = Math.min(count, from + 500);
    const batch = gatherBatch(data, Uint32Array.from({ length: to - from }, (_, i) => from + i), 0, to - from);
    const out = tf.tidy(() => model.predict(tf.tensor(batch.xs, [batch.size, ...inputShape])) as tf.Tensor);
    all.set((await out.data()) as Float32Array, from * data.numClasses);
    out.dispose();
  }
  return all;
}

function tableOf(logits: Float32Array, c: Candidate, numClasses: number): SoftTargetTable {
  const table = emptyTable(c.transferSamples, numClasses, c.topK, c.temperature);
  writeTopK(table, 0, logits.subarray(0, c.transferSamples * numClasses));
  return table;
}

/** The round's student training (same code, one process, no ring), scored on the validation images. */
async function screenStudent(train: ImageDataset, validation: ImageDataset, inputShape: number[], seed: number, c: Candidate, alpha: number, table: SoftTargetTable | undefined): Promise<number> {
  const model = buildZooModel(D.student, { inputShape, numClasses: train.numClasses, seed });
  const optimizer = createOptimizer({ optimizer: D.optimizer, learningRate: D.learningRate });
  const training: StudentTraining = { zooModel: D.student, seed, batchSize: D.batchSize, steps: c.steps, samples: c.transferSamples, optimizer: D.optimizer, learningRate: D.learningRate, temperature: c.temperature, alpha, evalBatchSize: 1000, stepTimeoutSeconds: 60 };
  try {
    await trainStudent({ model, optimizer, training, train, inputShape, table, ring: undefined, startStep: 0, onProgress: () => {}, isCancelled: () => false });
    return (await evaluate(model, validation, { batchSize: 1000, outputKind: 'logits', inputShape })).accuracy;
  } finally {
    model.dispose();
    optimizer.dispose();
  }
}

function formatScreen(results: Record<string, number>, grid: Candidate[]): string {
  const lines = ['validation accuracy (images 55,000–59,999), gap closed against the teacher of the row'];
  for (const c of grid) {
    const teacherAcc = results[`teacher ${c.teacher}`];
    const alone = results[keyOf(c, true)];
    const distilled = results[keyOf(c, false)];
    const gap = teacherAcc !== undefined && alone !== undefined && distilled !== undefined ? `${(((distilled - alone) / (teacherAcc - alone)) * 100).toFixed(1)}%` : '-';
    lines.push(`${keyOf(c, false).padEnd(40)} alone ${pct(alone)} distilled ${pct(distilled)} teacher ${pct(teacherAcc)} gap ${gap}`);
  }
  return lines.join('\n');
}

const pct = (v: number | undefined): string => (v === undefined ? '   -  ' : `${(v * 100).toFixed(2)}%`);

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`error: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
