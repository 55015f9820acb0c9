import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jobFromFlags } from '../shared/cli/training-flags.js';
import { JobValidationError, parseTrainingJob } from '../shared/job/schema.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rp-job-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof JobValidationError) return err.problems;
    throw err;
  }
  throw new Error('expected a JobValidationError');
}

describe('training job schema', () => {
  it('fills defaults', () => {
    expect(parseTrainingJob({})).toMatchObject({ model: 'mlp', batchSize: 128, optimizer: 'adam', backend: 'auto', seed: 42 });
  });

  it('names every bad field and what was given', () => {
    const problems = problemsOf(() => parseTrainingJob({ batchSize: 12.5, optimizer: 'lbfgs', learningRate: -1, bogus: 1 }));
    expect(problems).toHaveLength(4);
    expect(problems.find((p) => p.startsWith('batchSize:'))).toMatch(/must be a whole number, got 12\.5/);
    expect(problems.find((p) => p.startsWith('optimizer:'))).toMatch(/must be one of "adam", "sgd", "momentum", "rmsprop", got "lbfgs"/);
    expect(problems.find((p) => p.startsWith('learningRate:'))).toMatch(/must be greater than 0, got -1/);
    expect(problems).toContain("(top level): unknown field 'bogus'");
  });

  it('reads a job file and lets flags override it, naming the flag in errors', async () => {
    const file = path.join(tmp, 'job.json');
    writeFileSync(file, JSON.stringify({ model: 'cnn', epochs: 3 }));
    const job = await jobFromFlags({ job: file, epochs: '0.5', 'batch-size': '64' });
    expect(job).toMatchObject({ model: 'cnn', epochs: 0.5, batchSize: 64 });
    await expect(jobFromFlags({ job: file, 'batch-size': 'many' })).rejects.toThrow(/batchSize \(--batch-size\): .*got "many"/);
    await expect(jobFromFlags({ job: file, backend: 'tpu' })).rejects.toThrow(/backend \(--backend\): .*got "tpu"/);
  });

  it('explains a missing or broken job file', async () => {
    await expect(jobFromFlags({ job: path.join(tmp, 'none.json') })).rejects.toThrow(/cannot read job file .*none\.json: no such file/);
    const broken = path.join(tmp, 'broken.json');
    writeFileSync(broken, '{"model": "mlp",');
    await expect(jobFromFlags({ job: broken })).rejects.toThrow(/job file .*broken\.json is not valid JSON/);
    writeFileSync(broken, '[1, 2]');
    await expect(jobFromFlags({ job: broken })).rejects.toThrow(/must hold a JSON object/);
  });
});
