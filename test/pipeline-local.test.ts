import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { EpochBatches } from '../shared/data/epoch-batches.js';
import { buildZooModel } from '../shared/models/zoo.js';
import { recordForward } from '../peer/pipeline/autodiff/deferred-tape.js';
import { labelledLength, packLabelled, unpackLabelled } from '../peer/pipeline/links/labelled-activation.js';
import {
  balanceByCost,
  balanceByParameters,
  checkBalance,
  localLinkPair,
  microBatchSizes,
  parseBalance,
  partitionModel,
  peakInFlight,
  PipelineError,
  runLocalPipeline,
  sequentialLayers,
  splitMiniBatch,
  stageSchedule,
  theoreticalBubble,
  type ScheduleKind,
  type StageOp,
} from '../peer/pipeline/index.js';
import { maxAbsDifference, referenceTraining, syntheticImages, tinyCnn, trainableValues, zooFactory, type ModelFactory } from './fixtures/pipeline-reference.js';

beforeAll(async () => {
  // The cpu backend sums in a fixed order: the most deterministic reference.
  await tf.setBackend('cpu');
});

describe('balancing', () => {
  it('minimises the slowest stage, then evens out the rest', () => {
    expect(balanceByCost([1, 1, 1, 1], 2)).toEqual([2, 2]);
    expect(balanceByCost([5, 1, 1, 1, 1, 1], 2)).toEqual([1, 5]);
    expect(balanceByCost([1, 2, 3, 4, 5], 3)).toEqual([3, 1, 1]);
    // A free layer (Flatten) is not left alone in a stage when it costs nothing to avoid it.
    const mlp = sequentialLayers(buildZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 })).map((l) => l.countParams());
    expect(mlp).toEqual([0, 401_920, 131_328, 2_570]);
    expect(balanceByParameters(mlp, 2)).toEqual([2, 2]);
    expect(balanceByParameters(mlp, 3)).toEqual([2, 1, 1]);
    expect(balanceByParameters(mlp, 4)).toEqual([1, 1, 1, 1]);
  });

  it('refuses impossible splits with the reason', () => {
    expect(() => balanceByCost([1, 2], 3)).toThrow(/cannot split 2 layers into 3 stages/);
    expect(() => checkBalance([2, 1], 4)).toThrow(/covers 3 layers but the model has 4/);
    expect(() => checkBalance([2, 0, 2], 4)).toThrow(/positive number of layers/);
    expect(parseBalance('3, 2,1')).toEqual([3, 2, 1]);
    expect(() => parseBalance('3,,1')).toThrow(/--balance must list positive layer counts/);
    expect(() => parseBalance('2,1.5')).toThrow(/--balance/);
  });
});

describe('partitioning', () => {
  it('splits a sequential or chain-shaped functional model; stages chained equal the model', () => {
    const model = tinyCnn(3, [12, 12, 1]);
    const stages = partitionModel(model, [2, 3, 1]);
    expect(stages.map((s) => s.layers.length)).toEqual([2, 3, 1]);
    expect(stages.map((s) => [s.inputShape, s.outputShape])).toEqual([
      [[12, 12, 1], [5, 5, 4]],
      [[5, 5, 4], [12]],
      [[12], [10]],
    ]);
    const x = tf.randomUniform([3, 12, 12, 1], 0, 1, 'float32', 9);
    const whole = model.predict(x) as tf.Tensor;
    const chained = tf.tidy(() => stages.reduce((t, stage) => stage.apply(t, false), x));
    expect(tf.max(tf.abs(tf.sub(whole, chained))).dataSync()[0]).toBe(0);
    tf.dispose([x, whole, chained]);

    const input = tf.input({ shape: [6] });
    const hidden = tf.layers.dense({ units: 4 }).apply(input) as tf.SymbolicTensor;
    const chain = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2 }).apply(hidden) as tf.SymbolicTensor });
    expect(sequentialLayers(chain).map((l) => l.getClassName())).toEqual(['Dense', 'Dense']);
  });

  it('refuses a model with branches or several inputs, naming the layer', () => {
    const input = tf.input({ shape: [6] });
    const a = tf.layers.dense({ units: 4, name: 'trunk' }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.dense({ units: 4, name: 'left' }).apply(a) as tf.SymbolicTensor;
    const c = tf.layers.dense({ units: 4, name: 'right' }).apply(a) as tf.SymbolicTensor;
    const residual = tf.model({ name: 'residual', inputs: input, outputs: tf.layers.add({ name: 'merge' }).apply([b, c]) as tf.SymbolicTensor });
    const error = (() => {
      try {
        partitionModel(residual, [2, 2]);
      } catch (e) {
        return e as PipelineError;
      }
      throw new Error('expected a refusal');
    })();
    expect(error).toBeInstanceOf(PipelineError);
    expect(error.kind).toBe('not-sequential');
    expect(error.message).toMatch(/model 'residual' cannot be split into pipeline stages: the output of layer 'trunk' feeds 2 layers.*Only sequential models/);

    const x1 = tf.input({ shape: [2] });
    const x2 = tf.input({ shape: [2] });
    const twoInputs = tf.model({ inputs: [x1, x2], outputs: tf.layers.concatenate().apply([x1, x2]) as tf.SymbolicTensor });
    expect(() => sequentialLayers(twoInputs)).toThrow(/it has 2 inputs and 1 outputs/);
  });
});

describe('micro-batches', () => {
  it('splits as evenly as possible and scales losses to the mini-batch mean', () => {
    expect(microBatchSizes(8, 3)).toEqual([3, 3, 2]);
    expect(microBatchSizes(8, 8)).toEqual(new Array(8).fill(1));
    expect(() => microBatchSizes(3, 4)).toThrow(/mini-batch of 3 samples cannot be split into 4/);
    const batch = { xs: Float32Array.from({ length: 7 * 2 }, (_, i) => i), labels: Int32Array.from([0, 1, 2, 3, 4, 5, 6]), size: 7 };
    const micro = splitMiniBatch(batch, 3);
    expect(micro.map((m) => Array.from(m.labels))).toEqual([[0, 1, 2], [3, 4], [5, 6]]);
    expect(Array.from(micro[1]!.xs)).toEqual([6, 7, 8, 9]);
    expect(micro.reduce((sum, m) => sum + m.lossScale, 0)).toBeCloseTo(1, 12);
  });
});

/**
 * Runs every stage's op list against the data dependencies of a pipeline, one time unit per pass:
 * forward m on stage s needs forward m on s − 1; backward m needs backward m on s + 1 and forward m
 * here. Returns the time each stage finished, or throws on a deadlock.
 */
function simulate(kind: ScheduleKind, stages: number, microBatches: number): number {
  const lists = Array.from({ length: stages }, (_, stage) => stageSchedule(kind, { stage, stages, microBatches }));
  const done = new Map<string, number>();
  const key = (op: StageOp, stage: number) => `${op.kind}${op.micro}@${stage}`;
  const cursor = new Array<number>(stages).fill(0);
  const free = new Array<number>(stages).fill(0);
  for (let progressed = true; progressed; ) {
    progressed = false;
    for (let s = 0; s < stages; s++) {
      const op = lists[s]![cursor[s]!];
      if (!op) continue;
      const deps = op.kind === 'forward' ? (s > 0 ? [key(op, s - 1)] : []) : [key({ kind: 'forward', micro: op.micro }, s), ...(s < stages - 1 ? [key(op, s + 1)] : [])];
      if (!deps.every((d) => done.has(d))) continue;
      const start = Math.max(free[s]!, ...deps.map((d) => done.get(d)!));
      done.set(key(op, s), start + 1);
      free[s] = start + 1;
      cursor[s]!++;
      progressed = true;
    }
  }
  if (cursor.some((c, s) => c !== lists[s]!.length)) throw new Error(`${kind} deadlocks at K=${stages}, M=${microBatches}`);
  return Math.max(...free);
}

describe('schedules', () => {
  it('GPipe runs all forwards, then all backwards in reverse; 1F1B interleaves after a warm-up', () => {
    const fmt = (ops: StageOp[]) => ops.map((op) => `${op.kind[0]}${op.micro}`).join(' ');
    expect(fmt(stageSchedule('gpipe', { stage: 1, stages: 3, microBatches: 3 }))).toBe('f0 f1 f2 b2 b1 b0');
    expect(fmt(stageSchedule('1f1b', { stage: 0, stages: 3, microBatches: 4 }))).toBe('f0 f1 f2 b0 f3 b1 b2 b3');
    expect(fmt(stageSchedule('1f1b', { stage: 2, stages: 3, microBatches: 4 }))).toBe('f0 b0 f1 b1 f2 b2 f3 b3');
    expect(() => stageSchedule('zigzag' as ScheduleKind, { stage: 0, stages: 2, microBatches: 2 })).toThrow(/unknown schedule 'zigzag'/);
  });

  it('never deadlock, take 2(M + K − 1) unit passes (the theoretical bubble), and 1F1B caps the state in flight', () => {
    for (const stages of [1, 2, 3, 4]) {
      for (const microBatches of [1, 2, 3, 8]) {
        for (const kind of ['gpipe', '1f1b'] as const) {
          const makespan = simulate(kind, stages, microBatches);
          expect(makespan).toBe(2 * (microBatches + stages - 1));
          expect(1 - (2 * microBatches) / makespan).toBeCloseTo(theoreticalBubble(stages, microBatches), 12);
        }
        for (let stage = 0; stage < stages; stage++) {
          expect(peakInFlight(stageSchedule('gpipe', { stage, stages, microBatches }))).toBe(microBatches);
          expect(peakInFlight(stageSchedule('1f1b', { stage, stages, microBatches }))).toBe(Math.min(stages - stage, microBatches));
        }
      }
    }
  });
});

describe('deferred tape', () => {
  it('gives the gradients tf.grads gives, later, and frees everything it kept', () => {
    const model = tinyCnn(4, [8, 8, 1]);
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 5);
    const dy = tf.randomUniform([2, 10], -1, 1, 'float32', 6);
    const variables = model.trainableWeights.map((w) => w.read());
    const reference = tf.engine().gradients(() => tf.sum(tf.mul(model.apply(x, { training: true }) as tf.Tensor, dy)), [x, ...variables]);
    const before = tf.memory().numTensors;
    const recorded = recordForward(() => model.apply(x, { training: true }) as tf.Tensor, variables);
    expect(recorded.savedBytes).toBeGreaterThan(0);
    // Another gradient computation in between must not disturb the recorded tape.
    const unrelated = tf.variableGrads(() => tf.sum(model.apply(x) as tf.Tensor) as tf.Scalar);
    tf.dispose([unrelated.value, ...Object.values(unrelated.grads)]);
    const grads = recorded.backward([x, ...variables], dy);
    grads.forEach((g, i) => expect(tf.tidy(() => tf.max(tf.abs(tf.sub(g, reference.grads[i]!))).dataSync()[0])).toBe(0));
    expect(() => recorded.backward([x], dy)).toThrow(/backward already ran/);
    tf.dispose([recorded.output, ...grads]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, dy, reference.value, ...reference.grads]);
    model.dispose();
  });
});

describe('in-process pipeline', () => {
  const data = syntheticImages(256, [12, 12, 1], 11);
  const inputShape = [12, 12, 1];
  const steps = 3;
  const batchSize = 24;
  const makeOptimizer = () => tf.train.adam(0.003);
  const cases: { name: string; makeModel: ModelFactory; balance: number[]; microBatches: number; kind: ScheduleKind; rematerialize: boolean }[] = [
    { name: 'mlp, 2 stages, GPipe', makeModel: zooFactory('mlp', 5, inputShape), balance: [2, 2], microBatches: 4, kind: 'gpipe', rematerialize: false },
    { name: 'mlp, 3 stages, 1F1B, re-materialised', makeModel: zooFactory('mlp', 5, inputShape), balance: [2, 1, 1], microBatches: 5, kind: '1f1b', rematerialize: true },
    { name: 'conv net, 3 stages, GPipe, re-materialised', makeModel: () => tinyCnn(6, inputShape), balance: [2, 2, 2], microBatches: 3, kind: 'gpipe', rematerialize: true },
    { name: 'conv net, 4 stages, 1F1B', makeModel: () => tinyCnn(6, inputShape), balance: [1, 2, 2, 1], microBatches: 6, kind: '1f1b', rematerialize: false },
  ];
  const references = new Map<ModelFactory, Promise<Awaited<ReturnType<typeof referenceTraining>>>>();

  for (const c of cases) {
    it(`${c.name}: same weights and losses as one process on whole mini-batches, no tensor leaked`, async () => {
      if (!references.has(c.makeModel)) references.set(c.makeModel, referenceTraining({ makeModel: c.makeModel, data, batchSize, steps, seed: 2, makeOptimizer }));
      const reference = await references.get(c.makeModel)!;
      const before = tf.memory().numTensors;
      const model = c.makeModel();
      const result = await runLocalPipeline({
        model,
        balance: c.balance,
        schedule: { microBatches: c.microBatches, kind: c.kind, rematerialize: c.rematerialize },
        batchSize,
        steps,
        batches: new EpochBatches(data, { batchSize, seed: 2 }),
        createOptimizer: makeOptimizer,
        loss: { numClasses: 10, outputKind: 'logits' },
        receiveTimeoutMs: 10_000,
      });
      expect(maxAbsDifference(reference.weights, await trainableValues(model))).toBeLessThanOrEqual(1e-5);
      result.losses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]!)).toBeLessThanOrEqual(1e-5));
      const stages = c.balance.length;
      expect(result.stages.map((s) => s.peakInFlight)).toEqual(
        result.stages.map((_, s) => (c.kind === 'gpipe' ? c.microBatches : Math.min(stages - s, c.microBatches))),
      );
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('re-materialisation holds only stage inputs: less memory in flight than keeping activations', async () => {
    const held = async (rematerialize: boolean) => {
      const model = zooFactory('mlp', 5, inputShape)();
      const result = await runLocalPipeline({
        model,
        balance: [2, 2],
        schedule: { microBatches: 4, rematerialize },
        batchSize,
        steps: 1,
        batches: new EpochBatches(data, { batchSize, seed: 2 }),
        createOptimizer: makeOptimizer,
        loss: { numClasses: 10, outputKind: 'logits' },
      });
      model.dispose();
      return result.stages.map((s) => s.peakHeldBytes);
    };
    const kept = await held(false);
    const rematerialized = await held(true);
    // Re-materialised: exactly the 4 micro-batch inputs (6 samples × 144 pixels, or × 512 hidden units).
    expect(rematerialized).toEqual([4 * 6 * 144 * 4, 4 * 6 * 512 * 4]);
    kept.forEach((bytes, s) => expect(bytes).toBeGreaterThan(rematerialized[s]!));
  });

  it('a stage that fails ends the whole pipeline at once with its error, not a timeout', async () => {
    const model = zooFactory('mlp', 5, inputShape)();
    let served = 0;
    const started = performance.now();
    const run = runLocalPipeline({
      model,
      balance: [1, 2, 1],
      schedule: { microBatches: 2 },
      batchSize,
      steps: 3,
      batches: {
        next: () => {
          if (served++ === 1) throw new Error('disk on fire');
          return new EpochBatches(data, { batchSize, seed: 2 }).next();
        },
      },
      createOptimizer: makeOptimizer,
      loss: { numClasses: 10, outputKind: 'logits' },
      receiveTimeoutMs: 30_000,
    });
    await expect(run).rejects.toThrow(/disk on fire/);
    expect(performance.now() - started).toBeLessThan(10_000);
    model.dispose();
  });

  it('refuses to re-materialise layers that would not repeat their forward pass (dropout, batch norm)', async () => {
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [4], units: 4 }), tf.layers.dropout({ rate: 0.5, name: 'drop' }), tf.layers.dense({ units: 10 })],
    });
    const run = (rematerialize: boolean) =>
      runLocalPipeline({
        model,
        balance: [2, 1],
        schedule: { microBatches: 2, rematerialize },
        batchSize: 4,
        steps: 1,
        batches: { next: () => ({ xs: new Float32Array(16), labels: new Int32Array(4), size: 4 }) },
        createOptimizer: makeOptimizer,
        loss: { numClasses: 10, outputKind: 'logits' },
      });
    await expect(run(true)).rejects.toThrow(/stage 0 cannot re-materialise: 'drop' \(Dropout\) would not repeat its forward pass exactly/);
    await expect(run(false)).resolves.toBeDefined();
    model.dispose();
  });

  it('a neighbour out of step is caught by the tag of what arrives', async () => {
    const [a, b] = localLinkPair(['stage 0', 'stage 1']);
    await a.send({ step: 4, micro: 1, kind: 'activation' }, new Float32Array(2));
    await expect(b.receive({ step: 4, micro: 0, kind: 'activation' }, 1_000)).rejects.toThrow(
      /expected the activation of micro-batch 0 of step 4 from stage 0, got the activation of micro-batch 1 of step 4/,
    );
    await expect(b.receive({ step: 4, micro: 2, kind: 'gradient' }, 50)).rejects.toThrow(/waited 50 ms for the gradient of micro-batch 2/);
  });

  it('an activation travels with its labels in one tensor, every label bit kept, into a reused buffer', async () => {
    const [a, b] = localLinkPair(['stage 0', 'stage 1']);
    const labels = new Int32Array([3, -1, 2 ** 30 + 7]);
    const activation = Float32Array.from({ length: 6 }, (_, i) => i / 7);
    const packed = packLabelled(activation, labels, new Float32Array(labelledLength(3, 2)));
    await a.send({ step: 1, micro: 0, kind: 'labelled-activation' }, packed);
    const into = new Float32Array(labelledLength(3, 2));
    const received = (await b.receive({ step: 1, micro: 0, kind: 'labelled-activation' }, 1_000, into)) as Float32Array;
    expect(received).toBe(into);
    const unpacked = unpackLabelled(received, 3, 2);
    expect([...unpacked.activation]).toEqual([...activation]);
    expect([...unpacked.labels]).toEqual([...labels]);
    expect(() => unpackLabelled(received, 2, 2)).toThrow(/2 samples × 2 values has 6 floats, got 9/);
  });
});
