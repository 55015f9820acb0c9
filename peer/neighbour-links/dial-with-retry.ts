import type { ControlMessage, Link } from '../../shared/transport/index.js';

/**
 * Dials a neighbour (the next rank of a ring, the next stage of a pipeline), retrying refused
 * connections until `deadline`: the neighbour may still be starting its listener. Any other error,
 * or the deadline, ends the attempts with `fail(error)`.
 */
export async function dialWithRetry<M extends ControlMessage>(open: (timeoutMs: number) => Promise<Link<M>>, deadline: number, fail: (error: Error) => Error): Promise<Link<M>> {
  for (;;) {
    try {
      return await open(Math.max(1, deadline - Date.now()));
    } catch (error) {
      const refused = (error as { code?: string }).code === 'connect' && /ECONNREFUSED/.test((error as Error).message);
      if (!refused || Date.now() + 100 > deadline) throw fail(error as Error);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
