/**
 * `/metrics` of a real coordinator with a real peer process training: the exposition parses as the
 * Prometheus text format (parse-prometheus-text-format, plus the strictness that parser lacks: every
 * family typed and documented, every sample line accounted for, every value a number) and carries
 * the dashboard's figures, agreeing with the page's own JSON.
 */
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DashboardView } from '../coordinator/dashboard/model/view-types.js';
import { ClusterHarness } from './fixtures/cluster-harness.js';

let harness: ClusterHarness | undefined;
afterAll(async () => {
  await harness?.cleanup();
});

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]Inf$|^NaN$/;

/** Sample lines of the text outside histogram families: one per non-comment line. */
function sampleLines(text: string, histograms: ReadonlySet<string>): number {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#') && !histograms.has(histogramOf(line))).length;
}

/** Samples the parser found outside histogram families. */
function parsedLines(families: PrometheusFamily[]): number {
  return families.filter((family) => family.type !== 'HISTOGRAM').reduce((total, family) => total + family.metrics.length, 0);
}

function histogramOf(line: string): string {
  return /^([a-zA-Z_:][a-zA-Z0-9_:]*?)(_bucket|_sum|_count)?[{ ]/.exec(line)?.[1] ?? '';
}

/**
 * The parser folds every series of a labelled histogram into one (the GC histogram has one series per
 * `kind`), so histograms are checked here: each series (labels without `le`) has ascending cumulative
 * buckets ending at +Inf, a `_sum` and a `_count` equal to the +Inf bucket, and nothing else.
 */
function checkHistogram(text: string, name: string): void {
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}(_bucket|_sum|_count)(?:\\{(.*)\\})? (\\S+)$`).exec(line);
    if (!match) {
      expect(line.startsWith(`${name}_`) || line.startsWith(`${name}{`) || line.startsWith(`${name} `), `unparsable line of ${name}: ${line}`).toBe(false);
      continue;
    }
    const [, suffix, labelText = '', value] = match;
    const labels = labelText.split(',').filter((label) => label !== '' && !label.startsWith('le='));
    const key = labels.sort().join(',');
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    expect(value, line).toMatch(NUMBER);
    if (suffix === '_bucket') {
      const le = /le="([^"]+)"/.exec(labelText)?.[1];
      expect(le, line).toBeDefined();
      entry.buckets.push([le === '+Inf' ? Infinity : Number(le), Number(value)]);
    } else if (suffix === '_sum') entry.sum = Number(value);
    else entry.count = Number(value);
  }
  for (const [key, entry] of series) {
    const what = `${name}{${key}}`;
    expect(entry.buckets.at(-1)?.[0], what).toBe(Infinity);
    for (let i = 1; i < entry.buckets.length; i++) {
      expect(entry.buckets[i]![0], what).toBeGreaterThan(entry.buckets[i - 1]![0]);
      expect(entry.buckets[i]![1], what).toBeGreaterThanOrEqual(entry.buckets[i - 1]![1]);
    }
    expect(entry.sum, what).toBeDefined();
    expect(entry.count, what).toBe(entry.buckets.at(-1)![1]);
  }
}

function family(families: PrometheusFamily[], name: string): PrometheusFamily {
  const found = families.find((f) => f.name === name);
  if (!found) throw new Error(`no metric ${name} in /metrics (have: ${families.map((f) => f.name).join(', ')})`);
  return found;
}

function value(families: PrometheusFamily[], name: string, labels: Record<string, string> = {}): number {
  const sample = family(families, name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!sample?.value) throw new Error(`no sample of ${name} with ${JSON.stringify(labels)}`);
  return Number(sample.value);
}

describe('/metrics (coordinator + 1 peer process)', () => {
  it('parses as Prometheus text and carries the same figures as the dashboard', async () => {
    harness = new ClusterHarness();
    const job = path.join(harness.dir, 'job.json');
    writeFileSync(job, JSON.stringify({ batchSize: 64, maxSteps: 5000, peers: { min: 1, max: 1 }, checkpoint: { everySteps: 5, everySeconds: 0, keep: 2 } }));
    const { child: coordinator, port } = await harness.coordinator(['--port', '0', '--job', job, '--dashboard-port', '0']);
    const url = coordinator.lines.map((line) => /^dashboard (http:\/\/\S+)\/#token=/.exec(line)?.[1]).find(Boolean);
    expect(url, coordinator.lines.join('\n')).toBeDefined();
    harness.peer(port, { name: 'peer-1' });
    const view = async (): Promise<DashboardView> => ((await (await fetch(`${url}/api/view`)).json()) as { view: DashboardView }).view;
    await ClusterHarness.until(() => harness!.metrics().length >= 12, 120_000, 'twelve training steps');
    await expect.poll(async () => (await view()).checkpoints.length, { timeout: 60_000 }).toBeGreaterThan(0);

    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const page = await view();
    const families = parsePrometheusTextFormat(text);

    // Strict where the parser is lenient: nothing untyped, undocumented, unparsed or non-numeric.
    for (const f of families) {
      expect(f.type, f.name).not.toBe('UNTYPED');
      expect(f.help, f.name).not.toBe('');
      for (const sample of f.metrics) for (const v of [sample.value, sample.sum, sample.count, ...Object.values(sample.buckets ?? {})].filter((x) => x !== undefined)) expect(v, f.name).toMatch(NUMBER);
    }
    const histograms = new Set(families.filter((f) => f.type === 'HISTOGRAM').map((f) => f.name));
    expect(parsedLines(families), text).toBe(sampleLines(text, histograms));
    for (const name of histograms) checkHistogram(text, name);
    expect(new Set(families.map((f) => f.name)).size).toBe(families.length);

    // The same figures as the page.
    expect(value(families, 'ringpipe_total_steps')).toBe(page.job.totalSteps);
    expect(value(families, 'ringpipe_phase', { phase: 'training' })).toBe(1);
    expect(value(families, 'ringpipe_membership_epoch')).toBe(page.job.epoch);
    expect(value(families, 'ringpipe_peers', { status: 'training' })).toBe(1);
    expect(value(families, 'ringpipe_peer_up', { node_id: 'peer-1' })).toBe(1);
    expect(family(families, 'ringpipe_peer_info').metrics[0]!.labels).toMatchObject({ node_id: 'peer-1', backend: page.peers[0]!.backend!, role: 'ring rank 0 of 1' });
    expect(value(families, 'ringpipe_peer_memory_bytes', { node_id: 'peer-1' })).toBeGreaterThan(50 * 1024 * 1024);
    expect(value(families, 'ringpipe_peer_last_heartbeat_timestamp_seconds', { node_id: 'peer-1' }) * 1000).toBeGreaterThan(Date.now() - 15_000);
    const step = value(families, 'ringpipe_step');
    expect(step).toBeGreaterThanOrEqual(12);
    expect(value(families, 'ringpipe_steps_total')).toBeGreaterThanOrEqual(12);
    expect(value(families, 'ringpipe_loss')).toBeGreaterThan(0);
    const accuracy = value(families, 'ringpipe_train_accuracy');
    expect(accuracy).toBeGreaterThanOrEqual(0);
    expect(accuracy).toBeLessThanOrEqual(1);
    for (const part of ['compute', 'communication', 'data_wait']) expect(value(families, 'ringpipe_step_part_seconds', { part })).toBeGreaterThanOrEqual(0);
    expect(value(families, 'ringpipe_step_part_seconds', { part: 'compute' })).toBeGreaterThan(0);
    // A checkpoint may have been written between the two requests: compare with the one /metrics named.
    const newest = page.checkpoints.find((checkpoint) => checkpoint.step === value(families, 'ringpipe_checkpoint_last_step'));
    expect(newest, JSON.stringify(page.checkpoints)).toBeDefined();
    expect(value(families, 'ringpipe_checkpoint_last_bytes')).toBe(newest!.bytes);
    expect(value(families, 'ringpipe_checkpoint_last_timestamp_seconds')).toBe(Date.parse(newest!.savedAt) / 1000);
    expect(value(families, 'ringpipe_checkpoints_written_total')).toBeGreaterThanOrEqual(1);
    expect(family(families, 'ringpipe_step_seconds').type).toBe('HISTOGRAM');
    expect(Number(family(families, 'ringpipe_step_seconds').metrics[0]!.count)).toBeGreaterThanOrEqual(12);
    // Unknown figures are absent, not zero: one peer has no all-reduce, the job no test accuracy yet.
    expect(families.some((f) => f.name === 'ringpipe_allreduce_busbw_bytes_per_second')).toBe(false);
    expect(families.some((f) => f.name === 'ringpipe_test_accuracy')).toBe(false);
    expect(families.some((f) => f.name === 'ringpipe_coordinator_process_cpu_seconds_total')).toBe(true);
  }, 180_000);
});
