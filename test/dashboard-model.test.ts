/**
 * What the dashboard computes from what it is told: the pipeline Gantt chart from real stage
 * timelines (a real in-process pipeline), step points from the members' progress reports, and the
 * peer table's dead/left/alive bookkeeping.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../coordinator/coordinator.js';
import { PrometheusMetrics } from '../coordinator/dashboard/metrics/prometheus-metrics.js';
import { DashboardModel } from '../coordinator/dashboard/model/dashboard-model.js';
import { PeerTable, type LivePeer } from '../coordinator/dashboard/model/peer-table.js';
import { pipelineGantt } from '../coordinator/dashboard/model/pipeline-gantt.js';
import { StepSeries } from '../coordinator/dashboard/model/step-series.js';
import { parseClusterJob } from '../coordinator/job/cluster-job.js';
import type { RoundReport } from '../coordinator/distillation/round-report.js';
import type { ClusterMessageOf } from '../coordinator/protocol/cluster-messages.js';
import type { CoordinatorSnapshot } from '../coordinator/state/coordinator-state.js';
import { runLocalPipeline, summarizeBubble, type TimelineData } from '../peer/pipeline/index.js';
import { EpochBatches } from '../shared/data/epoch-batches.js';
import { createLogger } from '../shared/log/logger.js';
import { syntheticImages, tinyCnn } from './fixtures/pipeline-reference.js';

const log = createLogger('dashboard-test', { level: 'silent' });
const runDir = mkdtempSync(path.join(os.tmpdir(), 'rp-dash-model-'));
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(runDir, { recursive: true, force: true }));

describe('pipeline panel', () => {
  let timelines: TimelineData[];
  beforeAll(async () => {
    const model = tinyCnn(3, [12, 12, 1]);
    const result = await runLocalPipeline({
      model,
      balance: [2, 2, 2],
      schedule: { microBatches: 3 },
      batchSize: 12,
      steps: 3,
      batches: new EpochBatches(syntheticImages(48, [12, 12, 1], 5), { batchSize: 12, seed: 2 }),
      createOptimizer: () => tf.train.sgd(0.05),
      loss: { numClasses: 10, outputKind: 'logits' },
      recordTimeline: true,
    });
    model.dispose();
    timelines = result.timelines;
  });

  it('draws the newest mini-batch of every stage on one time axis, with the measured bubble beside the theory', () => {
    const gantt = pipelineGantt(timelines)!;
    expect(gantt).toMatchObject({ stages: 3, microBatches: 3, schedule: 'gpipe', step: 2 });
    expect(gantt.rows.map((row) => row.stage)).toEqual([0, 1, 2]);
    for (const row of gantt.rows) {
      for (const kind of ['forward', 'backward'] as const) expect(row.spans.filter((s) => s.kind === kind).map((s) => s.micro).sort()).toEqual([0, 1, 2]);
      expect(row.spans.filter((s) => s.kind === 'update')).toHaveLength(1);
      for (const span of row.spans) {
        expect(span.startMs).toBeGreaterThanOrEqual(-1e-6);
        expect(span.startMs + span.durationMs).toBeLessThanOrEqual(gantt.durationMs + 1e-6);
      }
      // Spans come in time order, so a row reads left to right.
      expect(row.spans.map((s) => s.startMs)).toEqual([...row.spans.map((s) => s.startMs)].sort((a, b) => a - b));
    }
    // Stage 0's first forward pass starts the mini-batch; the last stage's forward waits for it.
    const firstForward = (stage: number) => gantt.rows[stage]!.spans.find((s) => s.kind === 'forward')!.startMs;
    expect(firstForward(2)).toBeGreaterThan(firstForward(0));
    const summary = summarizeBubble(timelines, { skipSteps: 1 });
    expect(gantt.measuredBubble).toBeCloseTo(summary.measured, 12);
    expect(gantt.theoreticalBubble).toBeCloseTo(2 / 5, 12);
    expect(gantt.rows.map((row) => row.bubble)).toEqual(summary.perStage.map((s) => s.bubble));
  });

  it('shows the panel only once timelines exist, and exports the bubble to /metrics', async () => {
    const coordinator = new Coordinator({ job: parseClusterJob({}), jobName: 'gantt', cluster: 'test', runDir, mdns: false, logger: log });
    const model = new DashboardModel(coordinator, log);
    const metrics = new PrometheusMetrics(model);
    try {
      // Spelled as the text format has it, even where prom-client would write "Nan".
      expect(await metrics.render()).not.toMatch(/ Nan$/m);
      expect(model.view().pipeline).toBeNull();
      expect(await metrics.render()).not.toMatch(/^ringpipe_pipeline_bubble_ratio\{/m);
      model.setPipelineTimelines(timelines);
      expect(model.view().pipeline?.rows).toHaveLength(3);
      const text = await metrics.render();
      expect(text).toMatch(/^ringpipe_pipeline_bubble_ratio\{kind="theoretical"\} 0\.4$/m);
      expect(text).toMatch(/^ringpipe_pipeline_stage_bubble_ratio\{stage="2",replica="0"\} [\d.e-]+$/m);
      expect(pipelineGantt([])).toBeNull();
    } finally {
      metrics.close();
      model.close();
    }
  });
});

describe('distillation panel', () => {
  const report: RoundReport = {
    round: 3,
    startedAt: '2026-01-01T10:00:00.000Z',
    finishedAt: '2026-01-01T10:05:00.000Z',
    dir: '/runs/x/distill/round-003',
    teacher: '/runs/x/checkpoints/step-00000936',
    student: 'mlp-small',
    notes: ['removed the softmax at the output of the teacher'],
    settings: { topK: 4, temperature: 4, alpha: 0.9, steps: 468, batchSize: 128, transferSamples: 60_000, optimizer: 'adam', learningRate: 0.001, seed: 42, peers: ['a', 'b'] },
    softTargets: { file: 'st.bin', bytes: 1_440_000, bytesPerSample: 24, cached: false, seconds: 12 },
    models: [
      { role: 'teacher', path: '/t', parameters: 535_818, bytesOnDisk: 2_143_272, msPerSample: 0.05, inferenceBatch: 100, backend: 'wasm', measuredBy: 'a', accuracy: 0.975, testLoss: 0.08 },
      { role: 'student', path: '/s', parameters: 50_890, bytesOnDisk: 203_560, msPerSample: 0.01, inferenceBatch: 100, backend: 'wasm', measuredBy: 'a', accuracy: 0.96, testLoss: 0.13, trainSeconds: 40 },
      { role: 'student-alone', path: '/s2', parameters: 50_890, bytesOnDisk: 203_560, msPerSample: 0.01, inferenceBatch: 100, backend: 'wasm', measuredBy: 'a', accuracy: 0.95, testLoss: 0.17, trainSeconds: 38 },
    ],
    gapClosed: 0.4,
  };

  it('shows the running round, the last failure and every report, newest first, and exports the newest to /metrics', async () => {
    const coordinator = new Coordinator({ job: parseClusterJob({}), jobName: 'distill', cluster: 'test', runDir, mdns: false, logger: log });
    const model = new DashboardModel(coordinator, log);
    const metrics = new PrometheusMetrics(model);
    try {
      expect(model.view().distillation).toEqual({ available: true, running: null, lastFailure: null, rounds: [], suggestedTeacher: null });
      coordinator.state.update({
        distillation: {
          running: { round: 4, teacher: "previous round's student", student: 'mlp-small', startedAt: '2026-01-01T10:06:00.000Z', progress: { stage: 'distilled', detail: 'distilled student: step 10/468', step: 10, totalSteps: 468 } },
          reports: [{ ...report, round: 2, gapClosed: null }, report],
          lastFailure: { round: 1, message: 'a peer left' },
        },
      });
      const view = model.view().distillation;
      expect(view.running).toEqual({ round: 4, teacher: "previous round's student", student: 'mlp-small', startedAt: '2026-01-01T10:06:00.000Z', stage: 'distilled', detail: 'distilled student: step 10/468', step: 10, totalSteps: 468 });
      expect(view.lastFailure).toEqual({ round: 1, message: 'a peer left' });
      expect(view.rounds.map((r) => r.round)).toEqual([3, 2]);
      expect(view.rounds[0]!.models.map((m) => [m.label, m.accuracy, m.trainSeconds])).toEqual([
        ['teacher', 0.975, null],
        ['distilled student', 0.96, 40],
        ['student alone', 0.95, 38],
      ]);
      expect(view.rounds[0]!.settings).toBe('top-4 at T = 4, alpha 0.9; 468 steps × batch 128 on 60000 samples, adam lr 0.001, 2 peers');
      expect(view.suggestedTeacher).toBe('previous');
      const text = await metrics.render();
      expect(text).toMatch(/^ringpipe_distillation_accuracy\{round="3",model="distilled student"\} 0\.96$/m);
      expect(text).toMatch(/^ringpipe_distillation_gap_closed_ratio 0\.4$/m);
      expect(text).toMatch(/^ringpipe_distillation_running 1$/m);
      expect(text).toMatch(/^ringpipe_distillation_rounds 2$/m);
    } finally {
      metrics.close();
      model.close();
    }
  });
});

function progress(fields: Partial<ClusterMessageOf<'progress'>> & { step: number }): ClusterMessageOf<'progress'> {
  return { type: 'progress', epoch: 1, loss: 1, samples: 64, samplesPerSecond: 1000, exchangeMs: 10, ...fields };
}

describe('step points', () => {
  it('combines the members of a step: means of the times, accuracy over all samples, busbw from bytes sent', () => {
    const series = new StepSeries();
    series.report(progress({ step: 7, samples: 96, accuracy: 0.5, computeMs: 30, dataWaitMs: 1, exchangeMs: 12, allReduceMs: 10, allReduceBytes: 4_000_000, samplesPerSecond: 900 }));
    series.report(progress({ step: 7, samples: 32, accuracy: 1, computeMs: 50, dataWaitMs: 3, exchangeMs: 8, allReduceMs: 30, allReduceBytes: 4_000_000, samplesPerSecond: 1100 }));
    const point = series.complete({ step: 7, loss: 0.7, samples: 128, worldSize: 2, epoch: 1, time: '2026-01-01T00:00:00.000Z' });
    expect(point).toMatchObject({ seq: 1, step: 7, loss: 0.7, worldSize: 2, partial: false, computeMs: 40, dataWaitMs: 2, communicationMs: 10, samplesPerSecond: 1000 });
    expect(point.accuracy).toBeCloseTo((0.5 * 96 + 32) / 128, 12);
    // 4 MB sent per rank in a mean 20 ms: 200 MB/s, which is already busbw (2(n-1)/n of the buffer).
    expect(point.busbwBytesPerSecond).toBeCloseTo(200e6, 3);
    expect(series.points).toEqual([point]);
  });

  it('keeps a redone step of a later epoch apart, and leaves unknown figures null', () => {
    const series = new StepSeries();
    series.report(progress({ epoch: 1, step: 3, computeMs: 99 }));
    series.report(progress({ epoch: 2, step: 3, computeMs: 11 }));
    const redone = series.complete({ step: 3, loss: 0.5, samples: 64, worldSize: 1, epoch: 2, time: '2026-01-01T00:00:01.000Z' });
    expect(redone.computeMs).toBe(11);
    expect(redone.busbwBytesPerSecond).toBeNull();
    expect(redone.accuracy).toBeNull();
    const bare = series.complete({ step: 4, loss: 0.4, samples: 64, worldSize: 1, epoch: 2, time: '2026-01-01T00:00:02.000Z', partial: true });
    expect(bare).toMatchObject({ seq: 2, computeMs: null, communicationMs: null, samplesPerSecond: null, partial: true });
  });
});

describe('peer table', () => {
  const live = (nodeId: string, status: LivePeer['status'] = 'prepared'): LivePeer => ({
    nodeId,
    hostname: 'lab-1',
    address: '10.0.0.5',
    status,
    prepared: { runId: 'r', backend: 'wasm', trainSamples: 60_000, stateElements: 10, stateLayout: 'x' },
    problem: undefined,
    lastHeardAt: 1_000,
  });
  const snapshot = (phase: CoordinatorSnapshot['phase'], members: string[]): CoordinatorSnapshot => ({
    cluster: 'c',
    jobName: 'j',
    runId: 'r',
    address: undefined,
    phase,
    detail: '',
    epoch: 1,
    topology: members.map((nodeId, rank) => ({ nodeId, rank, stage: null })),
    peers: [],
    step: 0,
    totalSteps: 10,
    samplesPerSecond: 0,
    lastLoss: undefined,
    checkpoints: [],
    result: undefined,
  });

  it('marks a peer lost during training dead with the reason, keeps it after it is gone, and revives it when it rejoins', () => {
    const table = new PeerTable(128);
    table.progress('a', progress({ step: 1, samplesPerSecond: 256, rssBytes: 123 }), 2_000);
    let rows = table.rows([live('a'), live('b')], snapshot('training', ['a', 'b']), 2_000);
    expect(rows.map((r) => [r.nodeId, r.status, r.role])).toEqual([
      ['a', 'training', 'ring rank 0 of 2'],
      ['b', 'training', 'ring rank 1 of 2'],
    ]);
    expect(rows[0]).toMatchObject({ stepsPerSecond: 2, memoryBytes: 123, step: 1, backend: 'wasm', lastHeartbeat: 1_000 });
    table.gone({ nodeId: 'b', hostname: 'lab-1', address: '10.0.0.5', backend: 'wasm' }, 'heartbeat timeout: nothing heard for 5000 ms', snapshot('training', ['a', 'b']), 3_000);
    rows = table.rows([live('a')], snapshot('recovering', ['a', 'b']), 3_500);
    expect(rows[1]).toMatchObject({ nodeId: 'b', status: 'dead', detail: 'heartbeat timeout: nothing heard for 5000 ms', since: 3_000, role: 'ring rank 1 of 2 (lost)' });
    // Steps per second go stale rather than showing an old rate.
    expect(table.rows([live('a')], snapshot('training', ['a']), 20_000)[0]!.stepsPerSecond).toBeNull();
    rows = table.rows([live('a'), live('b', 'preparing')], snapshot('training', ['a']), 21_000);
    expect(rows.map((r) => [r.nodeId, r.status])).toEqual([
      ['a', 'training'],
      ['b', 'preparing'],
    ]);
  });

  it('keeps what it knew of a peer that died before the table was ever drawn', () => {
    const table = new PeerTable(128);
    table.progress('c', progress({ step: 40, rssBytes: 1_000 }), 1_000);
    table.gone({ nodeId: 'c', hostname: 'lab-3', address: '10.0.0.7', backend: 'wasm' }, 'connection lost', snapshot('training', ['a', 'c']), 2_000);
    expect(table.rows([live('a')], snapshot('training', ['a']), 3_000)[1]).toMatchObject({
      nodeId: 'c',
      status: 'dead',
      hostname: 'lab-3',
      address: '10.0.0.7',
      backend: 'wasm',
      role: 'ring rank 1 of 2 (lost)',
      step: 40,
      memoryBytes: 1_000,
    });
  });

  it('calls peers that go once the job is over "left", not dead', () => {
    const table = new PeerTable(128);
    table.rows([live('a')], snapshot('training', ['a']), 1_000);
    table.gone({ nodeId: 'a', hostname: 'lab-1', address: '10.0.0.5', backend: 'wasm' }, 'job over', snapshot('finished', ['a']), 2_000);
    expect(table.rows([], snapshot('finished', ['a']), 2_500)[0]).toMatchObject({ status: 'left', detail: 'job over' });
  });
});
