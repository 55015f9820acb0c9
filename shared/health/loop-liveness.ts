import type { HealthStatus } from './health-status.js';

const TICK_MS = 100;

/**
 * Liveness of a Node process: the answer itself proves the event loop turns (every timer, link
 * heartbeat and training step runs on it), so a hung process fails the probe by not answering.
 * The reason reports the longest stall since the previous probe, which is what to look at when
 * probes start timing out (a synchronous TensorFlow.js call longer than the probe's timeout).
 * Measured with a plain timer: a late tick is a stall (perf_hooks' monitorEventLoopDelay does not
 * see a long synchronous block on Node 20).
 */
export function eventLoopLiveness(): () => HealthStatus {
  let last = performance.now();
  let longest = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last - TICK_MS);
    last = now;
  }, TICK_MS);
  // Measuring must never keep a finished process alive.
  ticker.unref();
  return () => {
    // A stall still in progress counts too (this probe is its first chance to run).
    const stalled = Math.max(longest, performance.now() - last - TICK_MS, 0);
    longest = 0;
    return { ok: true, reason: `event loop turning (longest stall since the last probe: ${Math.round(stalled)} ms)` };
  };
}
