import { DataError } from './data-error.js';
import { contextFor, type JsonValue, type Transform } from './transform.js';

/** One map stage as sent to a worker thread: which transform, with which options and randomness. */
export interface StageSpec {
  moduleUrl: string;
  exportName: string;
  options: JsonValue;
  seed: number;
  /** Position of the stage in the pipeline: gives each stage its own random stream. */
  stage: number;
  /**
   * Upstream of a cache the element is computed once and reused every epoch, so its randomness
   * must not depend on the epoch: those stages use epoch 0.
   */
  epochIndependent: boolean;
}

export interface WorkItem {
  sampleIndex: number;
  value: unknown;
}

/** A failed sample names the element stage that failed, so that stage's onError policy applies. */
export type ItemOutcome = { ok: true; value: unknown } | { ok: false; error: string; stage: number };

/** Runs consecutive map stages on each item; a failing item becomes an error outcome, the rest go on. */
export function runStages(stages: readonly StageSpec[], transforms: readonly Transform<unknown, unknown, JsonValue>[], epoch: number, items: readonly WorkItem[]): ItemOutcome[] {
  return items.map(({ sampleIndex, value }) => {
    let current = value;
    for (const [i, stage] of stages.entries()) {
      try {
        current = transforms[i]!.apply(current, stage.options, contextFor(stage.seed, stage.stage, stage.epochIndependent ? 0 : epoch, sampleIndex));
      } catch (err) {
        const message = err instanceof DataError ? err.message : `transform '${stage.exportName}' (${stage.moduleUrl}) failed on sample ${sampleIndex}: ${err instanceof Error ? err.message : String(err)}`;
        return { ok: false, error: message, stage: stage.stage };
      }
    }
    return { ok: true, value: current };
  });
}
