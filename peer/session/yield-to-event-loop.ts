/**
 * Lets timers and sockets run. TensorFlow.js awaits on wasm/cpu resolve as microtasks only, so a
 * training loop that never waits for the network (a ring of one) or a long evaluation would
 * otherwise starve the event loop: heartbeats unanswered, coordinator messages unread.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
