import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { EpochBatches } from '../shared/data/epoch-batches.js';
import { profileLayers } from '../shared/profiling/layer-profile.js';
import { planBalance, runLocalPipeline, sequentialLayers, summarizeBubble, theoreticalBubble, toChromeTrace, type TimelineData } from '../peer/pipeline/index.js';
import { replayBubble } from '../peer/pipeline/timeline/replayed-bubble.js';
import { syntheticImages, tinyCnn } from './fixtures/pipeline-reference.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/**
 * A convolution with few weights but much arithmetic (160 weights, ≈ 130k multiply-adds per sample),
 * then dense layers whose arithmetic is their weight count (≈ 13k).
 */
function convThenDense(): tf.Sequential {
  const seeded = (seed: number) => ({ kernelInitializer: tf.initializers.glorotUniform({ seed }) });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [32, 32, 1], filters: 16, kernelSize: 3, activation: 'relu', ...seeded(1) }),
      tf.layers.maxPooling2d({ poolSize: 4 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 16, activation: 'relu', ...seeded(2) }),
      tf.layers.dense({ units: 10, ...seeded(3) }),
    ],
  });
}

describe('per-layer profiling and balancing by time', () => {
  it('measures every layer and reports its parameters and output size', () => {
    const model = tinyCnn(1, [12, 12, 1]);
    const profile = profileLayers(sequentialLayers(model), [12, 12, 1], { batchSize: 8, repeats: 3 });
    expect(profile.map((p) => p.className)).toEqual(['Conv2D', 'MaxPooling2D', 'Conv2D', 'Flatten', 'Dense', 'Dense']);
    expect(profile.map((p) => p.parameters)).toEqual(model.layers.map((l) => l.countParams()));
    expect(profile.map((p) => p.outputValuesPerSample)).toEqual([10 * 10 * 4, 5 * 5 * 4, 2 * 2 * 6, 24, 12, 10]);
    for (const p of profile) {
      expect(p.forwardMs).toBeGreaterThan(0);
      expect(p.forwardBackwardMs).toBeGreaterThan(0);
    }
    model.dispose();
  });

  it('puts a cheap-in-weights but expensive-in-time convolution in its own stage, where counting parameters does not', () => {
    const model = convThenDense();
    // By weights the big dense layer dominates: everything else goes before it.
    expect(planBalance(model, 2, 'parameters').balance).toEqual([4, 1]);
    // By time the convolution dominates: it gets a stage of its own.
    const byTime = planBalance(model, 2, 'time', { batchSize: 4, repeats: 3 });
    expect(byTime.balance).toEqual([1, 4]);
    const [conv, , , dense] = byTime.profile!;
    expect(conv!.forwardBackwardMs).toBeGreaterThan(dense!.forwardBackwardMs);
    expect(planBalance(model, 2, '2,3').balance).toEqual([2, 3]);
    expect(() => planBalance(model, 3, '2,3')).toThrow(/has 2 stages, the pipeline 3/);
    expect(() => planBalance(model, 2, '2,2')).toThrow(/covers 4 layers but the model has 5/);
    model.dispose();
  });
});

describe('timeline and bubble', () => {
  it('summarises idle time as the measured bubble, beside (K − 1) / (M + K − 1)', () => {
    // Two stages, one step of 10 ms each after a skipped warm-up step: stage 0 idles 2 ms, stage 1 4 ms.
    const stage = (index: number, idleMs: number): TimelineData => ({
      stage: index,
      stages: 2,
      replica: 0,
      microBatches: 4,
      schedule: 'gpipe',
      steps: [
        { step: 0, startUs: 0, endUs: 50_000 },
        { step: 1, startUs: 50_000, endUs: 60_000 },
      ],
      spans: [
        { kind: 'idle', lane: 'compute', step: 0, startUs: 0, durationUs: 40_000 },
        { kind: 'forward', lane: 'compute', step: 1, micro: 0, startUs: 50_000, durationUs: 3_000 },
        { kind: 'idle', lane: 'compute', step: 1, startUs: 53_000, durationUs: idleMs * 1000 },
        { kind: 'backward', lane: 'compute', step: 1, micro: 0, startUs: 58_000, durationUs: 1_000 },
        { kind: 'send', lane: 'send', step: 1, micro: 0, startUs: 53_000, durationUs: 6_000 },
        { kind: 'update', lane: 'compute', step: 1, startUs: 59_000, durationUs: 500 },
      ],
    });
    const summary = summarizeBubble([stage(0, 2), stage(1, 4)]);
    expect(summary.steps).toBe(1);
    expect(summary.perStage.map((s) => [s.windowMs, s.computeMs, s.idleMs, s.otherMs])).toEqual([
      [10, 4, 2, 0.5],
      [10, 4, 4, 0.5],
    ]);
    expect(summary.measured).toBeCloseTo(0.3, 12);
    expect(summary.theoretical).toBeCloseTo(1 / 5, 12);
    expect(summary.stepMs).toBe(10);
  });

  it('replays the stages\' own times with free links: equal stages give (K − 1) / (M + K − 1), a slower stage more', () => {
    // One counted step; every forward and backward of stage s takes forwardMs[s] and backwardMs[s].
    const timelines = (forwardMs: number[], backwardMs: number[], updateMs = 0): TimelineData[] =>
      forwardMs.map((f, index) => ({
        stage: index,
        stages: forwardMs.length,
        replica: 0,
        microBatches: 4,
        schedule: 'gpipe',
        steps: [{ step: 1, startUs: 0, endUs: 1 }],
        spans: [
          ...[0, 1, 2, 3].flatMap((micro) => [
            { kind: 'forward' as const, lane: 'compute' as const, step: 1, micro, startUs: 0, durationUs: f * 1000 },
            { kind: 'backward' as const, lane: 'compute' as const, step: 1, micro, startUs: 0, durationUs: backwardMs[index]! * 1000 },
          ]),
          { kind: 'update' as const, lane: 'compute' as const, step: 1, startUs: 0, durationUs: updateMs * 1000 },
        ],
      }));
    const equal = replayBubble(timelines([1, 1], [2, 2]), { skipSteps: 1 });
    expect(equal.stepMs).toBeCloseTo((4 + 1) * 3, 9);
    expect(equal.bubble).toBeCloseTo(theoreticalBubble(2, 4), 9);
    // Stage 0 twice as slow: 4 · 6 + 3 = 27 ms per step; stage 0 idles 3 ms, stage 1 15 ms.
    const unequal = replayBubble(timelines([2, 1], [4, 2]), { skipSteps: 1 });
    expect(unequal.stepMs).toBeCloseTo(27, 9);
    expect(unequal.bubble).toBeCloseTo((3 / 27 + 15 / 27) / 2, 9);
    // An update is work, not bubble, but it stretches the step.
    expect(replayBubble(timelines([1, 1], [2, 2], 1), { skipSteps: 1 }).stepMs).toBeCloseTo(16, 9);
  });

  it('records every pass of every micro-batch and exports a Chrome trace with a row per stage', async () => {
    const model = tinyCnn(2, [12, 12, 1]);
    const data = syntheticImages(64, [12, 12, 1], 3);
    const microBatches = 3;
    const result = await runLocalPipeline({
      model,
      balance: [2, 2, 2],
      schedule: { microBatches },
      batchSize: 12,
      steps: 2,
      batches: new EpochBatches(data, { batchSize: 12, seed: 1 }),
      createOptimizer: () => tf.train.sgd(0.1),
      loss: { numClasses: 10, outputKind: 'logits' },
      recordTimeline: true,
    });
    model.dispose();
    expect(result.timelines).toHaveLength(3);
    for (const timeline of result.timelines) {
      for (const step of [0, 1]) {
        for (const kind of ['forward', 'backward'] as const) {
          const micro = timeline.spans.filter((s) => s.step === step && s.kind === kind).map((s) => s.micro);
          expect(micro.sort()).toEqual([0, 1, 2]);
        }
        expect(timeline.spans.filter((s) => s.step === step && s.kind === 'update')).toHaveLength(1);
      }
      expect(timeline.steps.map((s) => s.step)).toEqual([0, 1]);
      // Activations (with their labels, one tensor) leave every stage but the last, gradients every stage but the first.
      const sends = timeline.spans.filter((s) => s.kind === 'send' && s.step === 1).length;
      expect(sends).toBe((timeline.stage < 2 ? microBatches : 0) + (timeline.stage > 0 ? microBatches : 0));
    }
    const summary = summarizeBubble(result.timelines);
    expect(summary.theoretical).toBeCloseTo(theoreticalBubble(3, 3), 12);
    expect(summary.measured).toBeGreaterThanOrEqual(0);
    expect(summary.measured).toBeLessThan(1);

    const trace = toChromeTrace(result.timelines);
    const names = trace.traceEvents.filter((e) => e.name === 'process_name').map((e) => e.args?.name);
    expect(names).toEqual(['stage 0', 'stage 1', 'stage 2']);
    const spans = trace.traceEvents.filter((e) => e.ph === 'X');
    expect(spans.length).toBe(result.timelines.reduce((n, t) => n + t.spans.length, 0));
    expect(Math.min(...spans.map((e) => e.ts!))).toBe(0);
    for (const e of spans) expect(e.dur).toBeGreaterThanOrEqual(0);
    expect(new Set(spans.map((e) => e.tid))).toEqual(new Set([0, 1]));
    expect(JSON.parse(JSON.stringify(trace))).toEqual(trace);
  });
});
