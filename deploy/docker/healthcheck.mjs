// Docker HEALTHCHECK: healthy when the process's liveness endpoint answers 200, on the peer's
// health port (RINGPIPE_HEALTH_PORT, 8080 in this image) or the coordinator's dashboard port
// (RINGPIPE_DASHBOARD_PORT, 7080 by default), which serves /healthz too. Kubernetes ignores this and
// probes the same endpoints itself (deploy/kubernetes/).
const ports = [process.env.RINGPIPE_HEALTH_PORT || '8080', process.env.RINGPIPE_DASHBOARD_PORT || '7080'];
for (const port of new Set(ports)) {
  try {
    const answer = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3_000) });
    if (answer.ok) process.exit(0);
  } catch {
    // Nothing on this port (or no answer in time): try the next one.
  }
}
process.exit(1);
