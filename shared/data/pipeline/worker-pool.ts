import { Worker } from 'node:worker_threads';
import type { ItemOutcome, StageSpec, WorkItem } from './run-stages.js';
import type { CloseMessage, MapReplyMessage, MapTaskMessage } from './transform-worker.js';
import { prepareTransfer } from './transferables.js';
import { unpackOutcomes } from './packed-samples.js';

interface Pending {
  resolve: (outcomes: ItemOutcome[]) => void;
  reject: (err: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, Pending>;
}

const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);
const ENTRY = new URL('./transform-worker.ts', import.meta.url).href;

/**
 * A fixed set of worker threads running map stages on chunks of samples. A worker holds the
 * process open only while it has work in flight, so a pool someone forgot to close can never
 * keep the process from exiting; `close()` terminates the threads.
 */
export class WorkerPool {
  private readonly workers: PoolWorker[] = [];
  private nextId = 1;
  private closed = false;
  private broken: Error | undefined;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`a worker pool needs a positive whole number of threads, got ${size}`);
    for (let i = 0; i < size; i++) this.workers.push(this.spawn(i));
  }

  /**
   * Runs `stages` on `items` in the least busy worker; the items' typed arrays move to that thread.
   * `pack`: the results go straight to batch(), so they may come back packed (samples as views into one buffer).
   */
  run(stages: StageSpec[], epoch: number, items: WorkItem[], pack = false): Promise<ItemOutcome[]> {
    if (this.closed) return Promise.reject(new Error('the data pipeline was closed'));
    if (this.broken) return Promise.reject(this.broken);
    const target = this.workers.reduce((best, w) => (w.pending.size < best.pending.size ? w : best));
    const id = this.nextId++;
    const message: MapTaskMessage = { id, epoch, stages, items, pack };
    return new Promise<ItemOutcome[]>((resolve, reject) => {
      target.pending.set(id, { resolve, reject });
      if (target.pending.size === 1) target.worker.ref();
      target.worker.postMessage(message, prepareTransfer(message).transfer);
    });
  }

  /**
   * Lets each thread finish the chunk in hand and exit by itself (see transform-worker.ts for why
   * not terminate()); a thread still busy after `graceMs` (a transform stuck in a loop) is terminated.
   */
  async close(graceMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closedError = new Error('the data pipeline was closed');
    await Promise.all(
      this.workers.map(async (w) => {
        this.failAll(w, closedError);
        const exited = new Promise<void>((resolve) => w.worker.once('exit', () => resolve()));
        // Referenced until it has exited: the process must not end (and kill the thread mid-task) first.
        w.worker.ref();
        w.worker.postMessage({ close: true } satisfies CloseMessage);
        let timer: NodeJS.Timeout | undefined;
        const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), graceMs)));
        if ((await Promise.race([exited, stuck])) === 'stuck') await w.worker.terminate();
        clearTimeout(timer);
      }),
    );
  }

  private spawn(index: number): PoolWorker {
    const worker = new Worker(BOOTSTRAP, { workerData: { entry: ENTRY }, name: `ringpipe-data-${index}` });
    const entry: PoolWorker = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (reply: MapReplyMessage) => {
      const pending = entry.pending.get(reply.id);
      if (!pending) return;
      entry.pending.delete(reply.id);
      if (entry.pending.size === 0) worker.unref();
      if ('failure' in reply) pending.reject(new Error(reply.failure));
      else pending.resolve('packed' in reply ? unpackOutcomes(reply.packed) : reply.outcomes);
    });
    worker.on('error', (err: Error) => this.fail(entry, new Error(`data worker thread ${index} crashed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(entry, new Error(`data worker thread ${index} exited unexpectedly (code ${code})`));
    });
    return entry;
  }

  private fail(entry: PoolWorker, err: Error): void {
    this.broken ??= err;
    this.failAll(entry, err);
  }

  private failAll(entry: PoolWorker, err: Error): void {
    for (const pending of entry.pending.values()) pending.reject(err);
    entry.pending.clear();
    entry.worker.unref();
  }
}
