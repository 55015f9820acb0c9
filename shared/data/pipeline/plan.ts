import type { OnBadRecord } from './data-error.js';
import type { IndexStage } from './index-order.js';
import type { DataSource } from './source.js';
import type { JsonValue, Transform } from './transform.js';

/** The immutable description a `Dataset` builds up; the iterator executes it. */
export interface MapStage {
  kind: 'map';
  transform: Transform<unknown, unknown, JsonValue>;
  options: JsonValue;
  /** 0: run in the trainer's thread; n ≥ 1: run in n worker threads. */
  parallel: number;
  seed: number;
  onError: OnBadRecord;
}

export interface CacheStage {
  kind: 'cache';
  /** Absent: keep in memory. */
  file?: string;
}

export type ElementStage = MapStage | CacheStage;

export interface BatchSettings {
  size: number;
  dropRemainder: boolean;
  /** Samples per unit of work handed to a thread. */
  chunkSize: number;
}

export interface Plan {
  source: DataSource<unknown>;
  indexStages: IndexStage[];
  elementStages: ElementStage[];
}

export interface BatchedPlan extends Plan {
  batch: BatchSettings;
  prefetch: number;
  /** Each global batch is divided among `world` peers; this one takes slice `rank`. */
  split?: { rank: number; world: number };
}

/**
 * One line naming everything that decides which samples land in which batch (see PipelinePosition).
 * A `split()` is left out on purpose: its positions are global, valid for any rank and world size.
 */
export function describeOrder(plan: BatchedPlan): string {
  const parts = [`${plan.source.name} (${plan.source.size} samples)`];
  for (const stage of plan.indexStages) {
    parts.push(stage.kind === 'shard' ? `shard ${stage.rank}/${stage.world}${stage.equalSize ? ' equal' : ''}` : `shuffle buffer ${stage.bufferSize} seed ${stage.seed}`);
  }
  const skipping = plan.elementStages.some((s) => s.kind === 'map' && s.onError === 'skip');
  parts.push(`batch ${plan.batch.size}${plan.batch.dropRemainder ? '' : ' keep-partial'}${skipping ? ' skip-bad' : ''}`);
  return parts.join(' | ');
}

/** Identity of the elements a cache at `stageIndex` holds: the source and every map before it. */
export function describeUpstream(plan: Plan, stageIndex: number): string {
  const maps = plan.elementStages
    .slice(0, stageIndex)
    .filter((s): s is MapStage => s.kind === 'map')
    .map((s) => `${s.transform.exportName}(${JSON.stringify(s.options)}) seed ${s.seed}`);
  return [`${plan.source.name} (${plan.source.size} samples)`, ...maps].join(' → ');
}
