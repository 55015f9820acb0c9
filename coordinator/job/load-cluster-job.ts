import path from 'node:path';
import { readJobFile } from '../../shared/job/load-job-file.js';
import { parseClusterJob, type ClusterJob } from './cluster-job.js';

/** Command-line values that override job-file fields, by dotted field path. */
export type JobOverrides = Record<string, unknown>;

/**
 * The job from `--job FILE` (or all defaults without one) with command-line overrides, validated
 * as a whole: every bad field is reported at once, named by its path (e.g. `peers.max`).
 */
export async function loadClusterJob(file: string | undefined, overrides: JobOverrides = {}): Promise<{ job: ClusterJob; name: string }> {
  const input: Record<string, unknown> = file ? await readJobFile(file) : {};
  for (const [field, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const keys = field.split('.');
    let target = input;
    for (const key of keys.slice(0, -1)) {
      const next = target[key];
      target = (target[key] = typeof next === 'object' && next !== null && !Array.isArray(next) ? next : {}) as Record<string, unknown>;
    }
    target[keys[keys.length - 1]!] = value;
  }
  const job = parseClusterJob(input, file ? `job (file ${file} and flags)` : 'job (defaults and flags)');
  const fromFile = file ? path.basename(file).replace(/\.json$/i, '').replace(/[^A-Za-z0-9._-]/g, '-') : 'job';
  return { job, name: job.name ?? (fromFile || 'job') };
}

/** A numeric flag as a number, or left as text so validation names the field and shows the input. */
export function numberFlag(raw: string | undefined): number | string | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  return raw.trim() !== '' && Number.isFinite(value) ? value : raw;
}
