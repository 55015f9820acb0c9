import { Worker } from 'node:worker_threads';
import type { ItemOutcome, StageSpec, WorkItem } from './run-stages.js';
import type { CancelMessage, MapReplyMessage, MapTaskMessage } from './transform-worker.js';
import { prepareTransfer } from './transferables.js';
import { unpackOutcomes } from './packed-samples.js';

interface Pending {
  lease: number;
  resolve: (outcomes: ItemOutcome[]) => void;
  reject: (err: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, Pending>;
}

const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);
const ENTRY = new URL('./transform-worker.ts', import.meta.url).href;
const closedError = () => new Error('the data pipeline was closed');

/**
 * The process's data worker threads, shared by every pipeline through a `PoolLease`. Threads, and
 * the transforms they have loaded and compiled, outlive one iterator: reopening a pipeline (every
 * membership epoch, every evaluation) neither starts threads again (seconds with tsx on a busy
 * machine) nor runs cold code. A thread holds the process open only while it has work in flight,
 * so idle threads never keep the process from exiting.
 */
export class WorkerPool {
  private static shared: WorkerPool | undefined;
  private static nextLease = 1;
  private readonly workers: (PoolWorker | undefined)[] = [];
  private nextId = 1;

  /** A pipeline's share of the process's pool: up to `threads` threads, released by `close()`. */
  static lease(threads: number): PoolLease {
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`a worker pool needs a positive whole number of threads, got ${threads}`);
    return new PoolLease((WorkerPool.shared ??= new WorkerPool()), WorkerPool.nextLease++, threads);
  }

  /** Runs `stages` on `items` in the least busy of the first `threads` threads; the items' typed arrays move to that thread. */
  run(lease: number, threads: number, stages: StageSpec[], epoch: number, items: WorkItem[], pack: boolean): Promise<ItemOutcome[]> {
    for (let i = 0; i < threads; i++) this.workers[i] ??= this.spawn(i);
    const candidates = this.workers.slice(0, threads) as PoolWorker[];
    const target = candidates.reduce((best, w) => (w.pending.size < best.pending.size ? w : best));
    const id = this.nextId++;
    const message: MapTaskMessage = { id, lease, epoch, stages, items, pack };
    return new Promise<ItemOutcome[]>((resolve, reject) => {
      target.pending.set(id, { lease, resolve, reject });
      if (target.pending.size === 1) target.worker.ref();
      target.worker.postMessage(message, prepareTransfer(message).transfer);
    });
  }

  /** Every thread drops the lease's queued tasks (they reject as closed); the tasks in hand finish. */
  cancel(lease: number): void {
    for (const w of this.workers) w?.worker.postMessage({ cancel: lease } satisfies CancelMessage);
  }

  /**
   * Ends the threads still busy with the lease's work (a transform stuck in a loop): their tasks
   * fail, and fresh threads take their place at the next run. terminate() is the last resort: it
   * can stop a thread in the middle of a zlib call (PNG decoding), which aborts the whole process in
   * Node 20 ("CompressionStream::Close: close before init").
   */
  async terminateBusy(lease: number): Promise<void> {
    await Promise.all(
      this.workers.map(async (w, index) => {
        if (!w || ![...w.pending.values()].some((p) => p.lease === lease)) return;
        this.retire(index, w, new Error('a data worker thread was stopped: its transform did not finish within the grace period after close()'));
        await w.worker.terminate();
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
      else if ('dropped' in reply) pending.reject(closedError());
      else pending.resolve('packed' in reply ? unpackOutcomes(reply.packed) : reply.outcomes);
    });
    worker.on('error', (err: Error) => this.retire(index, entry, new Error(`data worker thread ${index} crashed: ${err.message}`)));
    worker.on('exit', (code) => this.retire(index, entry, new Error(`data worker thread ${index} exited unexpectedly (code ${code})`)));
    return entry;
  }

  /** Fails the thread's tasks and frees its slot, so the next run starts a fresh thread there. */
  private retire(index: number, entry: PoolWorker, err: Error): void {
    if (this.workers[index] === entry) this.workers[index] = undefined;
    for (const pending of entry.pending.values()) pending.reject(err);
    entry.pending.clear();
    entry.worker.unref();
  }
}

/** One pipeline's use of the shared pool: its tasks, and closing them down without touching other pipelines'. */
export class PoolLease {
  private closed = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly pool: WorkerPool,
    private readonly id: number,
    readonly threads: number,
  ) {}

  run(stages: StageSpec[], epoch: number, items: WorkItem[], pack = false): Promise<ItemOutcome[]> {
    if (this.closed) return Promise.reject(closedError());
    const task = this.pool.run(this.id, this.threads, stages, epoch, items, pack);
    const settled = task.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return task;
  }

  /**
   * Drops this pipeline's queued work and waits for the samples in hand to finish (never killing a
   * thread mid-call); a thread still busy after `graceMs` (a transform stuck in a loop) is terminated.
   */
  async close(graceMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.cancel(this.id);
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), graceMs)));
    const outcome = await Promise.race([Promise.all([...this.inFlight]), stuck]);
    clearTimeout(timer);
    if (outcome === 'stuck') await this.pool.terminateBusy(this.id);
  }
}
