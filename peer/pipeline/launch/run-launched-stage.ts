import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadMnist, type ImageDataset } from '../../../shared/data/mnist.js';
import type { DataIterator } from '../../../shared/data/pipeline/data-iterator.js';
import { trainingBatches } from '../../../shared/data/training-batches.js';
import { selectBackend } from '../../../shared/engine/select-backend.js';
import { createModel } from '../../../shared/models/create-model.js';
import { Prng } from '../../../shared/random/prng.js';
import { RingCollective } from '../../allreduce/ring-collective.js';
import { outputKindOf } from '../../trainer/loss.js';
import { transportNeighbourLink } from '../links/transport-link.js';
import type { StageNeighbours } from '../links/neighbour-link.js';
import { balanceByParameters, type Balance } from '../partition/balance.js';
import { takeStage } from '../partition/partition-model.js';
import { sequentialLayers } from '../partition/sequential-layers.js';
import { replicasFinished, ringGradientAverager } from '../replicas/replica-gradients.js';
import { runPipelineStage } from '../run-stage.js';
import type { ScheduleKind } from '../schedule/schedule.js';
import { Timeline } from '../timeline/timeline.js';
import { joinPipelineFromLauncher, reportToLauncher } from './join-from-launcher.js';
import { stageFilePrefix, type PipelineJob, type StageRunReport } from './pipeline-job.js';
import { stageOptimizer } from './stage-optimizer.js';

/**
 * The body of a launched stage process: join the pipeline (and the replica ring), then train every
 * run of the job on this stage and report each. The coordinator will drive runPipelineStage the same
 * way once it assigns stages.
 */
export async function runLaunchedStage(job: PipelineJob, options: { cluster: string; onStep?: (run: number, step: number) => void }): Promise<void> {
  await selectBackend({ force: job.backend });
  const launched = await joinPipelineFromLauncher({ cluster: options.cluster, ...(job.chunkBytes ? { chunkBytes: job.chunkBytes } : {}) });
  const { stage: index, stages, replica, replicas } = launched.place;
  const collective = launched.replicaRing ? new RingCollective(launched.replicaRing.membership, { timeoutMs: job.receiveTimeoutMs }) : undefined;
  const data = index === 0 ? await loadData(job) : undefined;
  try {
    for (const [run, settings] of job.runs.entries()) {
      const inputShape = data ? [data.height, data.width, data.channels] : [28, 28, 1];
      const model = await createModel(job.model, { inputShape, numClasses: 10, seed: job.seed });
      const balance: Balance = job.balance === 'parameters' ? balanceByParameters(sequentialLayers(model).map((l) => l.countParams()), stages) : job.balance;
      const stage = takeStage(model, balance, index);
      // One epoch per run: frames of an earlier run can never be mistaken for this run's.
      const neighbours: StageNeighbours = {};
      const chunk = job.chunkBytes ? { chunkBytes: job.chunkBytes } : {};
      if (launched.pipeline.links.previous) neighbours.previous = transportNeighbourLink(launched.pipeline.links.previous, { epoch: run, ...chunk });
      if (launched.pipeline.links.next) neighbours.next = transportNeighbourLink(launched.pipeline.links.next, { epoch: run, ...chunk });
      const optimizer = stageOptimizer(job);
      const batches = data ? stageBatches(data, job, replica, replicas) : undefined;
      const timeline = new Timeline({ stage: index, stages, replica, microBatches: settings.microBatches, schedule: settings.schedule });
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      const machineBefore = machineBusyMs();
      const result = await runPipelineStage({
        stage,
        stages,
        neighbours,
        schedule: { microBatches: settings.microBatches, kind: settings.schedule as ScheduleKind, rematerialize: settings.rematerialize, deferWeightGradients: settings.deferWeightGradients, ...(settings.settleRows ? { settleRows: settings.settleRows } : {}), settleWhileWaiting: settings.settleWhileWaiting },
        batchSize: job.batchSize,
        optimizer,
        steps: job.steps,
        ...(batches ? { batches } : {}),
        ...(index === stages - 1 ? { loss: { numClasses: 10, outputKind: outputKindOf(model) } } : {}),
        ...(collective ? { replicas: ringGradientAverager(collective) } : {}),
        timeline,
        receiveTimeoutMs: job.receiveTimeoutMs,
        ...(options.onStep ? { onStep: (report: { step: number }) => options.onStep!(run, report.step) } : {}),
      }).finally(() => batches?.close());
      const trainMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuBefore);
      const machineAfter = machineBusyMs();
      const report: StageRunReport = {
        run,
        stage: index,
        replica,
        balance,
        losses: result.losses,
        peakInFlight: result.peakInFlight,
        peakHeldBytes: result.peakHeldBytes,
        trainMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        ...(machineBefore !== undefined && machineAfter !== undefined ? { machineCpuMs: machineAfter - machineBefore } : {}),
        steps: result.steps,
      };
      if (job.outDir) {
        const prefix = stageFilePrefix(job.outDir, run, index, replica);
        await mkdir(`${job.outDir}/run-${run}`, { recursive: true });
        const weights = await stage.readWeights();
        await writeFile(`${prefix}.weights.json`, JSON.stringify(weights.map(({ name, shape }) => ({ name, shape }))));
        await writeFile(`${prefix}.weights.bin`, Buffer.concat(weights.map((w) => Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength))));
        await writeFile(`${prefix}.timeline.json`, JSON.stringify(timeline.toJSON()));
        report.weightsFile = `${prefix}.weights.bin`;
        report.timelineFile = `${prefix}.timeline.json`;
      }
      optimizer.dispose();
      for (const layer of stage.layers) for (const weight of layer.weights) weight.dispose();
      reportToLauncher('run', report);
    }
  } catch (error) {
    await launched.abort(`stage ${index} failed: ${(error as Error).message}`.slice(0, 200));
    throw error;
  }
  if (collective) await replicasFinished(collective);
  await launched.close();
}

/** Busy CPU time of the whole machine so far (all cores, all processes), from /proc/stat. */
function machineBusyMs(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields;
    // USER_HZ is 100 on Linux: one tick is 10 ms.
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 10;
  } catch {
    return undefined;
  }
}

async function loadData(job: PipelineJob): Promise<ImageDataset> {
  if (job.data === 'mnist') return loadMnist('train');
  return syntheticMnistShaped(job.data.synthetic, job.seed);
}

/** Random 28×28 images with random labels: the shape of MNIST without reading it. */
export function syntheticMnistShaped(count: number, seed: number): ImageDataset {
  const prng = new Prng(seed);
  const images = new Uint8Array(count * 28 * 28);
  for (let i = 0; i < images.length; i++) images[i] = prng.nextInt(256);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = prng.nextInt(10);
  return { images, labels, count, height: 28, width: 28, channels: 1, numClasses: 10 };
}

/**
 * The first stage's mini-batches through the data pipeline, as the coordinator's pipeline session
 * reads them: a fresh shuffle every epoch, replica r's slice of each global mini-batch (equal slices,
 * so the replicas' mean is the batch mean), and the next batches assembled ahead (prefetch) while
 * the stage waits for gradients, not at the step boundary.
 */
export function stageBatches(data: ImageDataset, job: Pick<PipelineJob, 'batchSize' | 'seed'>, replica: number, replicas: number): DataIterator {
  return trainingBatches(data, { batchSize: job.batchSize * replicas, seed: job.seed, split: { rank: replica, world: replicas }, prefetch: 2, name: 'pipeline' }).iterate();
}
