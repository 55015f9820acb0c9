/** Liveness and readiness endpoints for orchestrators (Kubernetes probes, docker HEALTHCHECK). */
export type { HealthChecks, HealthStatus } from './health-status.js';
export { handleHealthRequest, LIVENESS_PATH, READINESS_PATH } from './health-routes.js';
export { startHealthServer, type HealthServer, type HealthServerOptions } from './health-server.js';
export { eventLoopLiveness } from './loop-liveness.js';
export { coordinatorReadiness, type CoordinatorPhaseSource } from './coordinator-readiness.js';
export { PeerReadiness, type PeerReadinessReporter } from './peer-readiness.js';
export { holdUntilStopped } from './keep-running.js';
export { HEALTH_FLAGS_HELP, healthFlagOptions, serveHealthFromFlags } from './health-flags.js';
