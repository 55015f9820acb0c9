import { open } from 'node:fs/promises';
import type { LossPoint } from '../../coordinator/metrics/loss-log.js';

/**
 * Follows a run's metrics.jsonl as the coordinator appends to it (polling: it works on every file
 * system and the file grows by one short line per step). Stop with the returned function.
 */
export function followMetrics(file: string, onPoint: (point: LossPoint) => void, intervalMs = 500): () => Promise<void> {
  let offset = 0;
  let partial = '';
  let stopped = false;
  const poll = async (): Promise<void> => {
    const handle = await open(file, 'r').catch(() => undefined);
    if (!handle) return;
    try {
      const { size } = await handle.stat();
      if (size <= offset) return;
      const buffer = Buffer.alloc(size - offset);
      await handle.read(buffer, 0, buffer.length, offset);
      offset = size;
      const lines = (partial + buffer.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        try {
          onPoint(JSON.parse(line) as LossPoint);
        } catch {
          // A line being written right now is read whole at the next poll.
        }
      }
    } finally {
      await handle.close();
    }
  };
  let running = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(poll).catch(() => {});
  }, intervalMs);
  return async () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    await running;
    await poll().catch(() => {});
  };
}
