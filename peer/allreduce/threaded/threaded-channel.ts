import { Worker } from 'node:worker_threads';
import type { FrameTag, ReceivedFrame, RingChannel } from '../ring-channel.js';
import { RingError } from '../ring-errors.js';
import { allocateShared } from '../wasm-arena.js';
import { CONSUMED, PRODUCED, SharedQueue, createSharedQueueMemory } from './shared-queue.js';
import { RECEIVE_RECORD, SEND_RECORD, type FromWorker, type ReceiveWorkerData, type SendWorkerData, type ToSendWorker } from './worker-messages.js';

const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);
const SEND_ENTRY = new URL('./send-worker.ts', import.meta.url).href;
const RECEIVE_ENTRY = new URL('./receive-worker.ts', import.meta.url).href;

export interface ThreadedChannelOptions {
  /** Frames queued per direction (sends in flight; receive slots). */
  depth: number;
  /** Size of each receive slot = the largest frame accepted. */
  maxFrameBytes: number;
  sendTimeoutMs: number;
}

interface PendingSend {
  index: number;
  deadline: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * The ring channel with its socket I/O on two worker threads: one writes frames to the next rank,
 * one reads frames from the previous rank into shared-memory slots. The main thread only reduces,
 * so sending, receiving and reducing really run at the same time (as gloo's I/O threads do), and a
 * busy machine gives the rank three threads' worth of CPU share instead of one. Frames cross threads
 * through shared queues, not messages; a send from a SharedArrayBuffer is not even copied.
 */
export class ThreadedRingChannel implements RingChannel {
  readonly maxFrameBytes: number;
  private readonly sendQueue: SharedQueue;
  private readonly receiveQueue: SharedQueue;
  private readonly slots: Uint8Array[];
  private readonly sendWorker: Worker;
  private readonly receiveWorker: Worker;
  private readonly buffers = new Map<SharedArrayBuffer, number>();
  private readonly staging: { id: number; bytes: Uint8Array }[] = [];
  private nextBufferId = 1;
  private pendingSends: PendingSend[] = [];
  private watchingSends = false;
  private received = 0;
  private holding = false;
  private failure: Error | undefined;
  /** Each direction can fail alone: a neighbour that finished and closed only matters if still needed. */
  private readonly sending = new DirectionState();
  private readonly receiving = new DirectionState();

  private constructor(
    parts: { sendQueue: SharedQueue; receiveQueue: SharedQueue; slots: ReceiveWorkerData['slots']; sendWorker: Worker; receiveWorker: Worker },
    private readonly options: ThreadedChannelOptions,
  ) {
    this.sendQueue = parts.sendQueue;
    this.receiveQueue = parts.receiveQueue;
    this.slots = parts.slots.map((slot) => new Uint8Array(slot.buffer, slot.byteOffset, slot.byteLength));
    this.sendWorker = parts.sendWorker;
    this.receiveWorker = parts.receiveWorker;
    this.maxFrameBytes = options.maxFrameBytes;
    this.sendWorker.on('message', (message: FromWorker) => {
      if (message.type === 'failed') this.failSends(new RingError(message.kind, message.message));
    });
    this.receiveWorker.on('message', (message: FromWorker) => {
      if (message.type === 'failed') this.receiving.set(new RingError(message.kind, message.message));
    });
    for (const worker of [this.sendWorker, this.receiveWorker]) {
      worker.on('error', (error: Error) => this.fail(new RingError('link', `ring I/O thread crashed: ${error.message}`)));
      worker.on('exit', () => this.fail(new RingError('broken', 'ring I/O thread exited')));
    }
  }

  /**
   * Starts both threads. `announce` gets our data port and token (to send to the next rank over the
   * ring link); `previous` resolves with the previous rank's (received over its link).
   */
  static async open(args: {
    host: string;
    deadline: number;
    labels: { next: string };
    announce: (offer: { port: number; token: string }) => Promise<void>;
    previous: Promise<{ host: string; port: number; token: string }>;
    options: ThreadedChannelOptions;
  }): Promise<ThreadedRingChannel> {
    const { depth, maxFrameBytes } = args.options;
    args.previous.catch(() => {}); // awaited below; must not count as unhandled if setup fails first
    const sendMemory = createSharedQueueMemory(depth, SEND_RECORD.width);
    const receiveMemory = createSharedQueueMemory(2 * depth, RECEIVE_RECORD.width);
    // In the ring arena: received chunks are then added into arena ring buffers in place (SIMD).
    const slots = Array.from({ length: depth }, () => ({ ...allocateShared(maxFrameBytes), byteLength: maxFrameBytes }));
    const sendData: SendWorkerData = { entry: SEND_ENTRY, role: 'send', host: args.host, deadline: args.deadline, queue: sendMemory, nextLabel: args.labels.next };
    const sendWorker = new Worker(BOOTSTRAP, { workerData: sendData, name: 'ringpipe-ring-send' });
    let receiveWorker: Worker | undefined;
    try {
      const offer = await workerMessage(sendWorker, 'offer', args.deadline);
      await args.announce({ port: offer.port, token: offer.token });
      const previous = await args.previous;
      const receiveData: ReceiveWorkerData = { entry: RECEIVE_ENTRY, role: 'receive', ...previous, deadline: args.deadline, queue: receiveMemory, slots, maxFrameBytes };
      receiveWorker = new Worker(BOOTSTRAP, { workerData: receiveData, name: 'ringpipe-ring-receive' });
      await Promise.all([workerMessage(sendWorker, 'connected', args.deadline), workerMessage(receiveWorker, 'connected', args.deadline)]);
      return new ThreadedRingChannel({ sendQueue: new SharedQueue(sendMemory), receiveQueue: new SharedQueue(receiveMemory), slots, sendWorker, receiveWorker }, args.options);
    } catch (error) {
      void sendWorker.terminate();
      void receiveWorker?.terminate();
      throw error;
    }
  }

  async send(tag: FrameTag, bytes: Uint8Array): Promise<void> {
    if (this.sending.error || this.sendQueue.closed) throw await this.sending.report();
    // Room in the queue means the record (and staging slot) `depth` sends ago is finished.
    while (this.sendQueue.backlog >= this.sendQueue.capacity) {
      await this.sendQueue.changed(CONSUMED, this.sendQueue.consumed, this.options.sendTimeoutMs);
      if (this.sending.error || this.sendQueue.closed) throw await this.sending.report();
    }
    const index = this.sendQueue.produced;
    const { id, byteOffset } = this.locate(bytes, index);
    this.sendQueue.push([tag.op, tag.frame, id, byteOffset, bytes.byteLength]);
    return new Promise<void>((resolve, reject) => {
      this.pendingSends.push({ index, deadline: Date.now() + this.options.sendTimeoutMs, resolve, reject });
      if (!this.watchingSends) void this.watchSends();
    });
  }

  async receive(timeoutMs: number): Promise<ReceivedFrame> {
    if (this.holding) {
      this.holding = false;
      this.receiveQueue.advance(CONSUMED);
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.receiving.error || this.receiveQueue.closed) throw await this.receiving.report();
      if (this.receiveQueue.produced !== this.received) break;
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.receiveQueue.changed(PRODUCED, this.received, left))) {
        if (this.receiveQueue.produced !== this.received) break;
        throw new RingError('timeout', `no data from the previous rank within ${timeoutMs} ms`);
      }
    }
    const record = this.receiveQueue.read(this.received);
    this.received = (this.received + 1) | 0;
    this.holding = true;
    const slot = record[RECEIVE_RECORD.slot]!;
    const bytes = slot < 0 ? EMPTY : this.slots[slot]!.subarray(0, record[RECEIVE_RECORD.byteLength]!);
    return { tag: { op: record[RECEIVE_RECORD.op]!, frame: record[RECEIVE_RECORD.frame]! }, bytes };
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.failSends(error);
    this.receiving.set(error);
    this.sendQueue.close();
    this.receiveQueue.close();
    for (const worker of [this.sendWorker, this.receiveWorker]) {
      worker.postMessage({ type: 'close' } satisfies ToSendWorker);
      void worker.terminate();
    }
  }

  close(): void {
    this.fail(new RingError('broken', 'the ring was closed'));
  }

  private failSends(error: Error): void {
    this.sending.set(error);
    for (const pending of this.pendingSends.splice(0)) pending.reject(error);
  }

  /** Where the send thread finds the bytes: in place for shared memory, else in a staging slot. */
  private locate(bytes: Uint8Array, index: number): { id: number; byteOffset: number } {
    if (bytes.buffer instanceof SharedArrayBuffer) return { id: this.register(bytes.buffer), byteOffset: bytes.byteOffset };
    const position = index % this.sendQueue.capacity;
    let slot = this.staging[position];
    if (!slot || slot.bytes.byteLength < bytes.byteLength) {
      const buffer = new SharedArrayBuffer(Math.max(bytes.byteLength, slot?.bytes.byteLength ?? 0, 64 * 1024));
      slot = { id: this.register(buffer), bytes: new Uint8Array(buffer) };
      this.staging[position] = slot;
    }
    slot.bytes.set(bytes);
    return { id: slot.id, byteOffset: 0 };
  }

  private register(buffer: SharedArrayBuffer): number {
    let id = this.buffers.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.buffers.set(buffer, id);
      this.sendWorker.postMessage({ type: 'buffer', id, buffer } satisfies ToSendWorker);
    }
    return id;
  }

  /** Resolves sends as the send thread reports them written, in order; fails the stalled ones. */
  private async watchSends(): Promise<void> {
    this.watchingSends = true;
    try {
      while (this.pendingSends.length > 0 && !this.sending.error) {
        const done = this.sendQueue.consumed;
        while (this.pendingSends.length > 0 && ((done - this.pendingSends[0]!.index) | 0) > 0) this.pendingSends.shift()!.resolve();
        const oldest = this.pendingSends[0];
        if (!oldest) break;
        const left = oldest.deadline - Date.now();
        if (left <= 0) {
          this.fail(new RingError('timeout', `sending to the next rank stalled for ${this.options.sendTimeoutMs} ms: it is not reading`));
          break;
        }
        await this.sendQueue.changed(CONSUMED, done, left);
        if (this.sendQueue.closed) this.failSends(await this.sending.report());
      }
    } finally {
      this.watchingSends = false;
    }
  }
}

/**
 * Why one direction stopped. An I/O thread that gives up closes its shared queue at once and says
 * why in a message that arrives a little later: `report` waits for it (briefly) rather than spin.
 */
class DirectionState {
  error: Error | undefined;
  private signal!: () => void;
  private readonly known = new Promise<void>((resolve) => (this.signal = resolve));

  set(error: Error): void {
    if (this.error) return;
    this.error = error;
    this.signal();
  }

  async report(): Promise<Error> {
    if (!this.error) await Promise.race([this.known, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
    return this.error ?? new RingError('link', 'a ring I/O thread stopped without saying why');
  }
}

/** The worker's first message of `type`; a 'failed' message or the deadline rejects. */
function workerMessage<T extends FromWorker['type']>(worker: Worker, type: T, deadline: number): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new RingError('timeout', `ring I/O thread did not report '${type}' in time`)), Math.max(1, deadline - Date.now()));
    const onMessage = (message: FromWorker): void => {
      if (message.type === type) finish(undefined, message as Extract<FromWorker, { type: T }>);
      else if (message.type === 'failed') finish(new RingError(message.kind, message.message));
    };
    const onError = (error: Error): void => finish(new RingError('link', `ring I/O thread crashed: ${error.message}`));
    const finish = (error: Error | undefined, value?: Extract<FromWorker, { type: T }>): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      if (error) reject(error);
      else resolve(value!);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}

const EMPTY = new Uint8Array(0);
