/**
 * The thread that reads the ring's frames from the previous rank: it dials the previous rank's data
 * port, reads every frame straight into a shared-memory slot (FrameReader), and publishes a record
 * per frame. The main thread advances `consumed` when it is done with a frame, which frees its slot.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ReaderFrame } from '../tcp/frame-reader.js';
import { connectionLost } from '../tcp/connection-lost.js';
import { openDataConnection } from '../tcp/data-plane-setup.js';
import { CONSUMED, SharedQueue } from './shared-queue.js';
import { type FromWorker, type ReceiveWorkerData } from './worker-messages.js';

const data = workerData as ReceiveWorkerData;
const port = parentPort!;
const queue = new SharedQueue(data.queue);
let stopped = false;
let destroy: (() => void) | undefined;

function fail(kind: 'timeout' | 'link', message: string): void {
  if (stopped) return;
  stopped = true;
  port.postMessage({ type: 'failed', kind, message } satisfies FromWorker);
  queue.close();
  destroy?.();
}

port.on('message', () => {
  // The only message is 'close'.
  stopped = true;
  destroy?.();
  port.close();
});

/** Frames handed to the main thread, oldest first, each releasing its slot when consumed. */
const handedOver: ReaderFrame[] = [];

async function releaseConsumed(): Promise<void> {
  let seen = 0;
  while (!stopped) {
    await queue.changed(CONSUMED, seen, Infinity);
    if (queue.closed) return;
    const now = queue.consumed;
    for (let i = 0; i < ((now - seen) | 0); i++) handedOver.shift()?.release();
    seen = now;
  }
}

async function main(): Promise<void> {
  const slots = data.slots.map((slot) => new Uint8Array(slot.buffer, slot.byteOffset, slot.byteLength));
  const { socket, reader } = await openDataConnection({
    host: data.host,
    port: data.port,
    token: data.token,
    deadline: data.deadline,
    reader: { slotBytes: 0, slots: slots.length, slotBuffers: slots, maxFrameBytes: data.maxFrameBytes },
  });
  destroy = () => socket.destroy();
  const lost = (error?: Error) => fail('link', connectionLost('previous', `${data.host}:${data.port}`, error).message);
  socket.on('error', lost);
  socket.on('close', () => lost());
  port.postMessage({ type: 'connected' } satisfies FromWorker);
  void releaseConsumed();
  while (!stopped) {
    // No timeout here: the main thread times out its receives and closes us.
    const frame = await reader.next(2 ** 31 - 1);
    // Empty frames hold no slot, so the slots alone do not bound the records outstanding.
    while (queue.backlog >= queue.capacity && !queue.closed) await queue.changed(CONSUMED, queue.consumed, Infinity);
    handedOver.push(frame);
    queue.push([frame.tag.op, frame.tag.frame, frame.slot, frame.bytes.byteLength]);
  }
}

main().catch((error: unknown) => fail((error as { kind?: string }).kind === 'timeout' ? 'timeout' : 'link', (error as Error).message));
