import type { HealthStatus } from './health-status.js';

/** The part of the coordinator's published state readiness reads (`CoordinatorState` fits). */
export interface CoordinatorPhaseSource {
  snapshot(): { phase: string; detail: string; address: string | undefined };
}

/** Phases in which the coordinator does not take peers: not listening yet, or the job is over. */
const NOT_ACCEPTING = new Set(['starting', 'finished', 'failed', 'stopped']);

/**
 * Ready = accepting peers: listening, and the job neither starting nor over. Training,
 * recovering and waiting all count, since peers may (re)join then; behind a Kubernetes Service
 * this keeps the Service pointing at the coordinator exactly while a peer can use it.
 */
export function coordinatorReadiness(state: CoordinatorPhaseSource): HealthStatus {
  const { phase, detail, address } = state.snapshot();
  const said = detail ? `: ${detail}` : '';
  if (address === undefined) return { ok: false, reason: `not listening yet (${phase}${said})` };
  if (NOT_ACCEPTING.has(phase)) return { ok: false, reason: `not accepting peers (${phase}${said})` };
  return { ok: true, reason: `accepting peers on ${address} (${phase}${said})` };
}
