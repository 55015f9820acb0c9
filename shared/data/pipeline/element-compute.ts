import { FileCache, MemoryCache, type ElementCache } from './element-cache.js';
import { describeUpstream, type MapStage, type Plan } from './plan.js';
import { runStages, type ItemOutcome, type StageSpec, type WorkItem } from './run-stages.js';
import { WorkerPool, type PoolLease } from './worker-pool.js';

/** A run of consecutive samples of one epoch's order: the unit of work of the pipeline. */
export interface Chunk {
  epoch: number;
  /** Position of the first sample in the epoch's order. */
  start: number;
  /** Source indices of the samples. */
  samples: Uint32Array;
  /** The epoch ends after this chunk. */
  last: boolean;
  /**
   * With `split()`: this chunk ends the peer's slice of a global batch, and the next global batch
   * starts at this position of the epoch's order. Otherwise undefined, but always present: one
   * object shape for every chunk keeps the pipeline's optimised code (see chunk-layout.ts).
   */
  batchEnd: number | undefined;
}

export type ComputeChunk = (chunk: Chunk) => Promise<ItemOutcome[]>;

export interface ElementComputation {
  compute: ComputeChunk;
  /** Whether any map runs in worker threads (then several chunks should be in flight). */
  parallel: number;
  close(): Promise<void>;
}

/**
 * Composes source → map/cache stages into one function from a chunk of sample indices to the
 * elements. Consecutive maps with the same placement run fused in one pass (one message per
 * chunk to a worker, not one per stage). Worker threads are shared by all parallel maps (and with
 * the process's other pipelines: see WorkerPool).
 */
export function composeElementStages(plan: Plan): ElementComputation {
  const stages = plan.elementStages;
  const lastCache = stages.map((s) => s.kind).lastIndexOf('cache');
  const parallel = Math.max(0, ...stages.map((s) => (s.kind === 'map' ? s.parallel : 0)));
  const pool = parallel > 0 ? WorkerPool.lease(parallel) : undefined;
  const caches: ElementCache[] = [];

  let compute: ComputeChunk = async (chunk) => Array.from(chunk.samples, (i) => ({ ok: true, value: plan.source.read(i) }));
  for (let i = 0; i < stages.length; ) {
    const stage = stages[i]!;
    if (stage.kind === 'cache') {
      const cache = stage.file ? new FileCache(stage.file, describeUpstream(plan, i)) : new MemoryCache();
      caches.push(cache);
      compute = cached(compute, cache);
      i++;
      continue;
    }
    let end = i + 1;
    while (end < stages.length && stages[end]!.kind === 'map' && (stages[end] as MapStage).parallel > 0 === stage.parallel > 0) end++;
    const group = stages.slice(i, end) as MapStage[];
    const specs = group.map((s, k): StageSpec => ({ moduleUrl: s.transform.moduleUrl, exportName: s.transform.exportName, options: s.options, seed: s.seed, stage: i + k, epochIndependent: i + k < lastCache }));
    // Results of the last stage go straight to batch(), which copies them: they may come back
    // packed, as views into one buffer (a cache or a map after them must get samples they own).
    compute = mapped(compute, specs, group, stage.parallel > 0 ? pool : undefined, end === stages.length);
    i = end;
  }
  return {
    compute,
    parallel,
    async close() {
      for (const cache of caches) cache.close();
      await pool?.close();
    },
  };
}

function mapped(upstream: ComputeChunk, specs: StageSpec[], group: MapStage[], pool: PoolLease | undefined, last: boolean): ComputeChunk {
  const transforms = group.map((s) => s.transform);
  return async (chunk) => {
    const inputs = await upstream(chunk);
    const work: WorkItem[] = [];
    inputs.forEach((outcome, i) => {
      if (outcome.ok) work.push({ sampleIndex: chunk.samples[i]!, value: outcome.value });
    });
    // Inline work runs as its own macrotask, so a prefetching pipeline interleaves with the trainer's awaits instead of starving them.
    const results = pool ? await pool.run(specs, chunk.epoch, work, last) : await new Promise<ItemOutcome[]>((resolve) => setImmediate(() => resolve(runStages(specs, transforms, chunk.epoch, work))));
    let next = 0;
    return inputs.map((outcome) => (outcome.ok ? results[next++]! : outcome));
  };
}

function cached(upstream: ComputeChunk, cache: ElementCache): ComputeChunk {
  return async (chunk) => {
    const found = Array.from(chunk.samples, (i) => cache.get(i) as ItemOutcome | undefined);
    const missing = found.flatMap((outcome, k) => (outcome ? [] : [k]));
    if (missing.length > 0) {
      const computed = await upstream({ ...chunk, samples: Uint32Array.from(missing, (k) => chunk.samples[k]!) });
      missing.forEach((k, m) => {
        cache.put(chunk.samples[k]!, computed[m]!);
        found[k] = computed[m]!;
      });
    }
    return found as ItemOutcome[];
  };
}
