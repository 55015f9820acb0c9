/**
 * What it costs to move one micro-batch's tensor between two pipeline stages, beyond the wire time:
 * reading the stage's output out of the engine (`dataSync`), framing and writing it on the stage link
 * (with the labels, going forward), reading and reassembling it at the other end and making a tensor
 * of it again. The per-layer profile and the one-stage pipeline of measure-machinery.ts do none of
 * this, yet a 2-stage pipeline does it twice per micro-batch on every boundary. Measured with the
 * pipeline's own links (two `StageNode`s joined over loopback in this process, authenticated as in a
 * cluster): CPU of both ends together, a line in the tensor's bytes.
 */
import { randomBytes } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { StageNode } from '../../peer/pipeline/links/stage-node.js';
import type { TensorTag } from '../../peer/pipeline/links/neighbour-link.js';
import { createLogger } from '../../shared/log/logger.js';

/** The two stage nodes' links log at info (link up, link closed): not the planner's business. */
const quiet = createLogger('planner-crossing', { level: 'silent' });

export interface CrossingCost {
  /** CPU ms of both ends per tensor moved, whatever its size. */
  fixedMs: number;
  perByteMs: number;
}

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

export function crossingMs(cost: CrossingCost | undefined, bytes: number): number {
  return cost ? cost.fixedMs + cost.perByteMs * bytes : 0;
}

/**
 * Moves tensors of `sizes` float32 values (one of each pair forward with int32 labels, one back) between two
 * stages `repeats` times, median CPU per move; the line through the smallest and largest size.
 */
export async function measureCrossing(options: { values?: [number, number]; samples?: number; repeats?: number } = {}): Promise<CrossingCost> {
  const [small, large] = options.values ?? [512, 32 * 1024];
  const samples = options.samples ?? 32;
  const repeats = options.repeats ?? 15;
  const secret = randomBytes(32);
  const cluster = `planner-crossing-${process.pid}`;
  const second = await StageNode.listen({ stage: 1, stages: 2, cluster, secret, nodeId: 'crossing-1', logger: quiet });
  const first = await StageNode.listen({ stage: 0, stages: 2, cluster, secret, nodeId: 'crossing-0', logger: quiet });
  const [a, b] = await Promise.all([first.join({ next: second.address! }), second.join({})]);
  try {
    const forward = a.neighbours.next!;
    const backward = b.neighbours.previous!;
    const labels = new Int32Array(samples);
    let step = 0;
    /** CPU ms of one tensor there (with labels) and one back, each read out of a tensor and made a tensor again. */
    const moveOnce = async (values: number): Promise<number> => {
      const output = tf.randomUniform([values]);
      const gradient = tf.randomUniform([values]);
      const s = step++;
      const tag = (kind: TensorTag['kind']): TensorTag => ({ step: s, micro: 0, kind });
      const started = cpuNowMs();
      const sent = [forward.send(tag('activation'), output.dataSync() as Float32Array), forward.send(tag('labels'), labels)];
      const received = await backward.receive(tag('activation'), 10_000);
      await backward.receive(tag('labels'), 10_000);
      const arrived = tf.tensor(received as Float32Array);
      const back = backward.send(tag('gradient'), gradient.dataSync() as Float32Array);
      const returned = tf.tensor((await forward.receive(tag('gradient'), 10_000)) as Float32Array);
      await Promise.all([...sent, back]);
      const ms = cpuNowMs() - started;
      tf.dispose([output, gradient, arrived, returned]);
      return ms / 2;
    };
    const medianAt = async (values: number): Promise<number> => {
      await moveOnce(values);
      const times: number[] = [];
      for (let i = 0; i < repeats; i++) times.push(await moveOnce(values));
      times.sort((x, y) => x - y);
      return times[Math.floor(times.length / 2)]!;
    };
    const smallMs = await medianAt(small);
    const largeMs = await medianAt(large);
    const perByteMs = Math.max(0, (largeMs - smallMs) / ((large - small) * 4));
    return { fixedMs: Math.max(0, smallMs - perByteMs * small * 4), perByteMs };
  } finally {
    await Promise.all([a.close(5_000), b.close(5_000)]).catch(() => {});
  }
}
