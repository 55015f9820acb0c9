/**
 * The pieces of coordinator-run pipelines that need no processes: the job's pipeline section, the
 * split the coordinator decides, stage parts joined into one checkpoint and cut back into parts,
 * and stage reports turned into the dashboard's Gantt rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { assembleStageParts, splitIntoStageParts } from '../coordinator/checkpoint/pipeline-checkpoint.js';
import { pipelineGantt } from '../coordinator/dashboard/model/pipeline-gantt.js';
import { chooseStageStateSource } from '../coordinator/epoch/choose-state-source.js';
import { assignSlots, orderStages } from '../coordinator/epoch/pipeline-epoch-controller.js';
import { StageTimelines } from '../coordinator/epoch/stage-timelines.js';
import { parseClusterJob } from '../coordinator/job/cluster-job.js';
import { planPipeline } from '../coordinator/job/pipeline-plan.js';
import { minReplicasOf, replicasWanted } from '../coordinator/job/pipeline-section.js';
import { JobValidationError } from '../shared/job/schema.js';
import { StageHolder } from '../peer/session/pipeline/stage-holder.js';
import { stageModelSource } from '../peer/session/pipeline/stage-model-source.js';
import { createOptimizer } from '../peer/trainer/optimizer.js';
import { createModel } from '../shared/models/create-model.js';
import { saveModel } from '../shared/models/file-io.js';
import { maxAbsDifference, syntheticImages } from './fixtures/pipeline-reference.js';
import { runLocalPipeline } from '../peer/pipeline/local-pipeline.js';
import { createLocalRing } from '../peer/allreduce/local-channel.js';
import { RingCollective } from '../peer/allreduce/ring-collective.js';
import { replicasDisagreeing } from '../peer/pipeline/replicas/replica-agreement.js';
import { ringGradientAverager } from '../peer/pipeline/replicas/replica-gradients.js';
import { trainStep } from '../peer/trainer/train-step.js';
import { EpochBatches } from '../shared/data/epoch-batches.js';
import { buildZooModel } from '../shared/models/zoo.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const MNIST = { name: 'mnist', inputShape: [28, 28, 1], numClasses: 10 };

function problemsOf(input: unknown): string[] {
  try {
    parseClusterJob(input);
  } catch (error) {
    if (error instanceof JobValidationError) return error.problems;
    throw error;
  }
  return [];
}

describe('the pipeline section of a job', () => {
  it('has defaults for the zoo models and names every bad field', () => {
    expect(parseClusterJob({ mode: 'pipeline' }).pipeline).toEqual({ stages: 2, microBatches: 4, schedule: 'gpipe', rematerialize: false, balance: 'flops', replicas: 1 });
    expect(parseClusterJob({}).pipeline).toBeUndefined();
    expect(problemsOf({ mode: 'pipeline', batchSize: 8, pipeline: { stages: 3, microBatches: 16, schedule: 'zigzag', balance: [2, 2] }, peers: { max: 2 } })).toEqual(
      expect.arrayContaining([
        'pipeline.schedule: must be one of "gpipe", "1f1b", got "zigzag"',
        'pipeline.microBatches: must be at most batchSize (8): every micro-batch needs a sample, got 16',
        'pipeline.balance: lists 2 stages but pipeline.stages is 3, got [2, 2]',
        'peers.max: a pipeline of 3 stages needs 3 peers (one per stage), got 2',
      ]),
    );
    expect(problemsOf({ pipeline: { stages: 2 } })).toEqual([expect.stringMatching(/^pipeline: only used with mode "pipeline"/)]);
  });

  it('replicas: each needs a micro-batch worth of its slice, and K·R peers; peers.min decides how few replicas may go on', () => {
    expect(problemsOf({ mode: 'pipeline', batchSize: 16, pipeline: { stages: 2, microBatches: 8, replicas: 3 }, peers: { max: 4 } })).toEqual([
      expect.stringMatching(/^pipeline\.replicas: each of the 3 replicas trains on its slice of the global batch \(batchSize 16 \/ 3 = 5 samples or so\), which must hold pipeline\.microBatches \(8\) samples/),
      'peers.max: 3 replicas of a 2-stage pipeline need 6 peers (one per stage of each replica), got 4',
    ]);
    expect(problemsOf({ mode: 'pipeline', pipeline: { replicas: 0 } })).toEqual([expect.stringMatching(/^pipeline\.replicas: /)]);
    const job = (peers: { min?: number }) => parseClusterJob({ mode: 'pipeline', pipeline: { stages: 2, replicas: 3 }, peers });
    expect(minReplicasOf(job({}), 2)).toBe(1);
    expect(minReplicasOf(job({ min: 3 }), 2)).toBe(2);
    expect(minReplicasOf(job({ min: 6 }), 2)).toBe(3);
    expect(minReplicasOf(job({ min: 16 }), 2)).toBe(3);
    // "auto": as many whole replicas as peers.max makes, at least peers.min's worth.
    const auto = parseClusterJob({ mode: 'pipeline', pipeline: { stages: 2, replicas: 'auto' }, peers: { min: 3, max: 7 } });
    expect([minReplicasOf(auto, 2), replicasWanted(auto, 2)]).toEqual([2, 3]);
    expect(problemsOf({ mode: 'pipeline', batchSize: 16, pipeline: { stages: 2, replicas: 'auto' } })).toEqual([
      expect.stringMatching(/^pipeline\.replicas: each of the 8 replicas \("auto" with peers\.max 16\) trains on its slice .* use a smaller peers\.max or micro-batches, or a larger batchSize, got "auto"$/),
    ]);
  });

  it('the coordinator splits mlp and cnn by counted FLOPs, and refuses a split that cannot be', async () => {
    expect((await planPipeline(parseClusterJob({ mode: 'pipeline' }))).balance).toEqual([2, 2]);
    // The CNN's two convolutions (most of its work, few of its parameters) go to different stages;
    // by parameters both would land in stage 0, before the dense layer that holds 90% of the weights.
    const cnn = await planPipeline(parseClusterJob({ mode: 'pipeline', model: 'cnn' }));
    expect(cnn.balance).toEqual([2, 5]);
    expect(cnn.layers[1]!.names[0]).toMatch(/^conv2d/);
    expect((await planPipeline(parseClusterJob({ mode: 'pipeline', model: 'cnn', pipeline: { balance: 'parameters' } }))).balance).toEqual([3, 4]);
    await expect(planPipeline(parseClusterJob({ mode: 'pipeline', pipeline: { stages: 5 } }))).rejects.toThrow(/^pipeline\.stages: model mlp has 4 layers .* cannot be cut into 5 stages/);
    await expect(planPipeline(parseClusterJob({ mode: 'pipeline', pipeline: { balance: [1, 2] } }))).rejects.toThrow(/^pipeline\.balance: balance \[1, 2\] covers 3 layers but the model has 4/);
  });
});

describe('pipeline checkpoints', () => {
  it('stage parts join into one LayersModel checkpoint that loads, and split back into the same parts', async () => {
    const job = parseClusterJob({ mode: 'pipeline', pipeline: { stages: 3, balance: [1, 2, 1] } });
    const source = await stageModelSource(job, MNIST);
    const holders = await Promise.all([0, 1, 2].map((stage) => StageHolder.create('run', [1, 2, 1], stage, source, job)));
    // The whole seeded model: each stage, built alone, starts from its layers' weights.
    const whole = await createModel(job.model, { ...MNIST, seed: job.seed });
    try {
      const stageValues = async () => (await Promise.all(holders.map((holder) => holder.module.readWeights()))).flat().map((w) => w.values);
      expect(maxAbsDifference(whole.trainableWeights.map((w) => w.read().dataSync() as Float32Array), await stageValues())).toBe(0);
      // Give each stage's optimizer slots (one update with gradients of ones).
      for (const holder of holders) {
        const grads: tf.NamedTensorMap = {};
        for (const variable of holder.module.trainableVariables) grads[variable.name] = tf.onesLike(variable);
        holder.optimizer.applyGradients(grads);
        tf.dispose(grads);
        holder.committedStep = 7;
      }
      const parts = await Promise.all(holders.map((holder) => holder.exportPart(7)));
      const files = assembleStageParts([parts[2]!, parts[0]!, parts[1]!]);
      const byName = new Map(files.map((f) => [f.name, f.data]));
      const modelJson = JSON.parse(Buffer.from(byName.get('model/model.json')!).toString('utf8')) as tf.io.ModelJSON;
      const loaded = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0]!.weights, weightData: byName.get('model/weights.bin')!.slice().buffer }));
      expect(loaded.getWeights().map((w) => w.shape)).toEqual(whole.getWeights().map((w) => w.shape));
      expect(maxAbsDifference(await stageValues(), loaded.getWeights().map((w) => w.dataSync() as Float32Array))).toBe(0);
      loaded.dispose();

      const back = splitIntoStageParts(files, 7, [1, 2, 1]);
      back.forEach((part, stage) => {
        const original = new Map(parts[stage]!.map((f) => [f.name, Buffer.from(f.data)]));
        for (const file of part) expect(Buffer.from(file.data).equals(original.get(file.name)!), `stage ${stage} ${file.name}`).toBe(true);
      });
      // A stage restored from its part holds the same optimizer state.
      const before = await holders[1]!.exportPart(7);
      await holders[1]!.importPart(back[1]!, 7);
      expect(Buffer.from((await holders[1]!.exportPart(7)).find((f) => f.name === 'optimizer.bin')!.data).equals(Buffer.from(before.find((f) => f.name === 'optimizer.bin')!.data))).toBe(true);
      expect(() => splitIntoStageParts(files, 7, [2, 2])).toThrow(/written by a pipeline with balance \[1, 2, 1\], this job's is \[2, 2\]: set pipeline\.stages and pipeline\.balance/);
    } finally {
      holders.forEach((holder) => holder.dispose());
      whole.dispose();
    }
  });
});

describe('pipeline stage memory', () => {
  it('a stage peer allocates only its own layers\' weights and optimizer slots, never the whole model', async () => {
    const job = parseClusterJob({ mode: 'pipeline', model: 'mlp', optimizer: 'adam', pipeline: { stages: 2, balance: [2, 2] } });
    const source = await stageModelSource(job, MNIST);
    // mlp: flatten, dense 784→512 | dense 512→256, dense 256→10.
    const stageParameters = [784 * 512 + 512, 512 * 256 + 256 + 256 * 10 + 10];
    // A fresh optimizer holds a few scalars of its own (Adam: its betas): counted apart.
    const bare = tf.memory();
    const probe = createOptimizer(job);
    const optimizerOwn = tf.memory();
    probe.dispose();
    for (const stage of [0, 1]) {
      const before = tf.memory();
      const holder = await StageHolder.create('run', [2, 2], stage, source, job);
      try {
        const built = tf.memory();
        expect(built.numBytes - before.numBytes).toBe(stageParameters[stage]! * 4 + (optimizerOwn.numBytes - bare.numBytes));
        expect(built.numTensors - before.numTensors).toBe(holder.module.layers.flatMap((layer) => layer.weights).length + (optimizerOwn.numTensors - bare.numTensors));
        const initial = (await holder.module.readWeights()).map((w) => w.values);
        // One update creates Adam's two moments per weight: still this stage's size only.
        const grads: tf.NamedTensorMap = {};
        for (const variable of holder.module.trainableVariables) grads[variable.name] = tf.onesLike(variable);
        holder.optimizer.applyGradients(grads);
        tf.dispose(grads);
        expect(await holder.heldBytes()).toEqual({ weights: stageParameters[stage]! * 4, slots: 2 * stageParameters[stage]! * 4 + 4 });
        // A fresh restart rebuilds the weights in place of the old ones (no leak, same initial values).
        holder.markTouched();
        await holder.resetFresh();
        expect(maxAbsDifference(initial, (await holder.module.readWeights()).map((w) => w.values))).toBe(0);
      } finally {
        holder.dispose();
      }
      expect(tf.memory().numBytes).toBe(before.numBytes);
    }
  });
});

describe('training accuracy on the last stage', () => {
  it('is the share of each mini-batch classified right before the update, as one process counts it (also re-materialised)', async () => {
    const data = syntheticImages(256, [28, 28, 1], 3);
    const batchSize = 64;
    const steps = 3;
    const makeModel = () => buildZooModel('mlp', { ...MNIST, seed: 4 });
    const reference: number[] = [];
    {
      const model = makeModel();
      const optimizer = tf.train.sgd(0.1);
      const batches = new EpochBatches(data, { batchSize, seed: 2 });
      for (let step = 0; step < steps; step++) {
        reference.push((await trainStep({ model, optimizer, inputShape: MNIST.inputShape, numClasses: 10, outputKind: 'logits' }, batches.next(), undefined, { accuracy: true })).accuracy!);
      }
      optimizer.dispose();
      model.dispose();
    }
    for (const rematerialize of [false, true]) {
      const model = makeModel();
      try {
        const result = await runLocalPipeline({
          model,
          balance: [2, 2],
          schedule: { microBatches: 4, kind: 'gpipe', rematerialize },
          batchSize,
          steps,
          batches: new EpochBatches(data, { batchSize, seed: 2 }),
          createOptimizer: () => tf.train.sgd(0.1),
          loss: { numClasses: 10, outputKind: 'logits' },
          receiveTimeoutMs: 10_000,
        });
        expect(result.stages[0]!.accuracies).toEqual([]);
        expect(result.stages[1]!.accuracies).toEqual(reference);
      } finally {
        model.dispose();
      }
    }
  });
});

describe('pipeline stages of a model file', () => {
  it('a stage of a model.json keeps its layers with the file\'s weights and frees the others', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rp-stage-file-'));
    const whole = await createModel('mlp', { ...MNIST, seed: 5 });
    try {
      await saveModel(whole, dir);
      const job = parseClusterJob({ mode: 'pipeline', model: path.join(dir, 'model.json'), optimizer: 'sgd', pipeline: { stages: 2, balance: [2, 2] } });
      const source = await stageModelSource(job, MNIST);
      const bare = tf.memory();
      const probe = createOptimizer(job);
      const optimizerOwn = { tensors: tf.memory().numTensors - bare.numTensors, bytes: tf.memory().numBytes - bare.numBytes };
      probe.dispose();
      const before = tf.memory();
      const holder = await StageHolder.create('run', [2, 2], 1, source, job);
      try {
        // Loaded whole, then cut: only the stage's 4 weights (and the optimizer's scalars) stay.
        expect(tf.memory().numTensors - before.numTensors).toBe(4 + optimizerOwn.tensors);
        expect(tf.memory().numBytes - before.numBytes).toBe((512 * 256 + 256 + 256 * 10 + 10) * 4 + optimizerOwn.bytes);
        const fileValues = whole.trainableWeights.slice(2).map((w) => w.read().dataSync() as Float32Array);
        expect(maxAbsDifference(fileValues, (await holder.module.readWeights()).map((w) => w.values))).toBe(0);
      } finally {
        holder.dispose();
      }
    } finally {
      whole.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pipeline epochs', () => {
  it('start from memory only when every stage holds the same step, else from the checkpoint, else fresh', () => {
    expect(chooseStageStateSource([12, 12, 12], 8)).toEqual({ source: 'memory', startStep: 12 });
    // A replacement holds nothing: every stage takes its part of the checkpoint.
    expect(chooseStageStateSource([12, -1, 12], 8)).toEqual({ source: 'checkpoint', startStep: 8 });
    // A stage died after the last stage committed a step the first one never finished.
    expect(chooseStageStateSource([11, 12], 8)).toEqual({ source: 'checkpoint', startStep: 8 });
    expect(chooseStageStateSource([4, 4], 8)).toEqual({ source: 'checkpoint', startStep: 8 });
    expect(chooseStageStateSource([-1, -1], undefined)).toEqual({ source: 'fresh', startStep: 0 });
    expect(chooseStageStateSource([0, 0], undefined)).toEqual({ source: 'fresh', startStep: 0 });
  });

  it('survivors keep their stage; newcomers take the free ones in arrival order', () => {
    const peer = (nodeId: string) => ({ nodeId });
    const [a, b, c, d] = [peer('a'), peer('b'), peer('c'), peer('d')];
    expect(orderStages([a, b, c], new Map())).toEqual([a, b, c]);
    // b (stage 1) died; d arrived: a and c keep stages 0 and 2, d takes 1.
    expect(orderStages([a, c, d], new Map([['a', 0], ['b', 1], ['c', 2]]))).toEqual([a, d, c]);
    // Fewer stages than before: a stage index beyond the pipeline is free for anyone.
    expect(orderStages([c, d], new Map([['c', 2], ['d', 1]]))).toEqual([c, d]);
  });

  it('replicas: survivors keep their slot, or their stage in another replica; newcomers fill the rest; extras sit out', () => {
    const peer = (nodeId: string) => ({ nodeId });
    const [a, b, c, d, e] = [peer('a'), peer('b'), peer('c'), peer('d'), peer('e')];
    const slot = (stage: number, replica: number) => ({ stage, replica });
    expect(assignSlots([a, b, c, d], 2, 2, new Map())).toEqual([[a, b], [c, d]]);
    const before = new Map([['a', slot(0, 0)], ['b', slot(1, 0)], ['c', slot(0, 1)], ['d', slot(1, 1)]]);
    // b (stage 1 of replica 0) died: one replica is left, d keeps stage 1 in it, c sits out.
    expect(assignSlots([a, c, d], 2, 1, before)).toEqual([[a, d]]);
    // Growing back: a and d keep their slots, c (stage 0, replica 1 before) and newcomer e fill replica 1.
    expect(assignSlots([a, c, d, e], 2, 2, new Map([['a', slot(0, 0)], ['d', slot(1, 0)]]))).toEqual([[a, d], [c, e]]);
    expect(() => assignSlots([a, b, c], 2, 2, new Map())).toThrow(/2 replicas of 2 stages need 4 peers, got 3/);
  });
});

describe('pipeline replicas', () => {
  const ringOf = (n: number) => createLocalRing(n).map((channel, rank) => new RingCollective({ rank, worldSize: n, channel }, { timeoutMs: 5_000 }));

  it("weight each replica's slice-mean gradient by its share of the global batch: the sum is the global mean, the same bits everywhere", async () => {
    const slices = [11, 10, 10];
    const ring = ringOf(3);
    const gradients = slices.map((_, r) => ({ w: Float32Array.from({ length: 6 }, (_, i) => (r + 1) * (i - 2.5)), b: Float32Array.of(r - 1) }));
    const averaged = await Promise.all(
      ring.map((collective, r) => ringGradientAverager(collective, { share: slices[r]! / 31 }).average({ w: tf.tensor(gradients[r]!.w, [2, 3]), b: tf.tensor(gradients[r]!.b) })),
    );
    const expected = (name: 'w' | 'b') => gradients[0]![name].map((_, i) => slices.reduce((sum, size, r) => sum + (size / 31) * gradients[r]![name][i]!, 0));
    for (const result of averaged) {
      expect(result.w!.shape).toEqual([2, 3]);
      expect(maxAbsDifference([result.w!.dataSync() as Float32Array, result.b!.dataSync() as Float32Array], [expected('w'), expected('b')])).toBeLessThan(1e-6);
      expect([...result.w!.dataSync()]).toEqual([...averaged[0]!.w!.dataSync()]);
    }
    tf.dispose(averaged);
  });

  it('a replica whose weights differ is named by every other replica, and names them all', async () => {
    const same = [Float32Array.of(1, 2, 3), Float32Array.of(4)];
    const ring = ringOf(3);
    expect(await Promise.all(ring.map((collective, r) => replicasDisagreeing(collective, r, same)))).toEqual([[], [], []]);
    const off = [Float32Array.of(1, 2, 3 + 1e-6), Float32Array.of(4)];
    expect(await Promise.all(ring.map((collective, r) => replicasDisagreeing(collective, r, r === 2 ? off : same)))).toEqual([[2], [2], [0, 1]]);
  });
});

describe('stage reports', () => {
  it('become the Gantt rows of the newest step every stage finished, and the measured bubble', () => {
    let drawn: ReturnType<typeof pipelineGantt> = null;
    const timelines = new StageTimelines((t) => (drawn = pipelineGantt(t)));
    timelines.beginEpoch({ microBatches: 2, schedule: 'gpipe' }, 2);
    const report = (stage: number, step: number, idleMs: number) => ({
      type: 'stage-report' as const,
      epoch: 1,
      stage,
      step,
      stepMs: 10,
      computeMs: 10 - idleMs,
      idleMs,
      spans: [
        { kind: 'forward' as const, micro: 0, startUs: step * 1e5 + stage * 1e3, durationUs: 2e3 },
        { kind: 'idle' as const, micro: null, startUs: step * 1e5 + 5e3, durationUs: idleMs * 1e3 },
      ],
    });
    timelines.add(report(0, 1, 9));
    timelines.add(report(1, 1, 9));
    timelines.add(report(0, 2, 4));
    expect(drawn).toMatchObject({ step: 1, stages: 2 });
    timelines.add(report(1, 2, 2));
    expect(drawn).toMatchObject({ step: 2, stages: 2, microBatches: 2, schedule: 'gpipe' });
    expect(drawn!.rows.map((row) => row.stage)).toEqual([0, 1]);
    // The first step of the epoch is warm-up: the bubble is over step 2, (0.4 + 0.2) / 2.
    expect(timelines.summary().measuredBubble).toBeCloseTo(0.3, 10);
    expect(timelines.summary().theoreticalBubble).toBeCloseTo(1 / 3, 10);
  });
});
