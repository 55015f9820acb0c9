/**
 * A single-producer, single-consumer queue of fixed-width int32 records in shared memory, with two
 * counters: `produced` (advanced by the producer) and `consumed` (by the consumer). Each side waits
 * for the other's counter with Atomics.waitAsync, so neither thread ever blocks its event loop.
 * This is how the ring's main thread and its I/O threads hand each other frames: no postMessage
 * (and no structured clone) per frame.
 */
export const PRODUCED = 0;
export const CONSUMED = 1;
/** Set (non-zero) when either side gives up; wakes every waiter. */
export const CLOSED = 2;
const COUNTERS = 4;

export interface SharedQueueMemory {
  counters: SharedArrayBuffer;
  records: SharedArrayBuffer;
  capacity: number;
  width: number;
}

type WaitAsync = (array: Int32Array, index: number, value: number, timeoutMs?: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export function createSharedQueueMemory(capacity: number, width: number): SharedQueueMemory {
  return { counters: new SharedArrayBuffer(COUNTERS * 4), records: new SharedArrayBuffer(capacity * width * 4), capacity, width };
}

export class SharedQueue {
  readonly counters: Int32Array;
  private readonly records: Int32Array;
  readonly capacity: number;
  private readonly width: number;

  constructor(memory: SharedQueueMemory) {
    this.counters = new Int32Array(memory.counters);
    this.records = new Int32Array(memory.records);
    this.capacity = memory.capacity;
    this.width = memory.width;
  }

  get produced(): number {
    return Atomics.load(this.counters, PRODUCED);
  }

  get consumed(): number {
    return Atomics.load(this.counters, CONSUMED);
  }

  get closed(): boolean {
    return Atomics.load(this.counters, CLOSED) !== 0;
  }

  /** Records produced but not yet consumed. */
  get backlog(): number {
    return (this.produced - this.consumed) | 0;
  }

  /** Producer: writes record number `produced` and publishes it. The caller checks there is room. */
  push(values: readonly number[]): void {
    const base = (this.produced % this.capacity) * this.width;
    for (let i = 0; i < this.width; i++) Atomics.store(this.records, base + i, values[i] ?? 0);
    this.advance(PRODUCED);
  }

  /** Consumer: reads record number `index` (which must be < produced). */
  read(index: number): number[] {
    const base = (index % this.capacity) * this.width;
    const out: number[] = new Array<number>(this.width);
    for (let i = 0; i < this.width; i++) out[i] = Atomics.load(this.records, base + i);
    return out;
  }

  advance(counter: typeof PRODUCED | typeof CONSUMED, by = 1): void {
    Atomics.add(this.counters, counter, by);
    Atomics.notify(this.counters, counter);
  }

  close(): void {
    Atomics.store(this.counters, CLOSED, 1);
    Atomics.notify(this.counters, PRODUCED);
    Atomics.notify(this.counters, CONSUMED);
  }

  /**
   * Resolves once `counter` no longer equals `seen`, the queue is closed, or `timeoutMs` passes
   * (then false).
   */
  async changed(counter: typeof PRODUCED | typeof CONSUMED, seen: number, timeoutMs: number): Promise<boolean> {
    if (this.closed) return true;
    const result = waitAsync(this.counters, counter, seen, Number.isFinite(timeoutMs) ? timeoutMs : undefined);
    const outcome = result.async ? await result.value : result.value;
    return outcome !== 'timed-out';
  }
}
