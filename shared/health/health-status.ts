/** One probe's answer: `ok` maps to HTTP 200, anything else to 503; `reason` says why, in words. */
export interface HealthStatus {
  ok: boolean;
  reason: string;
}

/**
 * What a process reports to an orchestrator. `live`: the process is not hung (restart it when
 * this fails). `ready`: it is doing its job right now (a coordinator accepting peers, a peer
 * training in the current epoch); failing readiness never restarts anything.
 */
export interface HealthChecks {
  live(): HealthStatus;
  ready(): HealthStatus;
}
