/**
 * The thread that writes the ring's frames to the next rank. It opens the data port, waits for the
 * next rank to dial in with the token, then takes send records off the shared queue and writes
 * header + payload straight from shared memory; `consumed` advances once the kernel has the bytes.
 */
import type { Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { connectionLost } from '../tcp/connection-lost.js';
import { encodeDataFrameHeader } from '../tcp/data-frame.js';
import { offerDataConnection } from '../tcp/data-plane-setup.js';
import { CONSUMED, PRODUCED, SharedQueue } from './shared-queue.js';
import { SEND_RECORD, type FromWorker, type SendWorkerData, type ToSendWorker } from './worker-messages.js';

const data = workerData as SendWorkerData;
const port = parentPort!;
const queue = new SharedQueue(data.queue);
const buffers = new Map<number, SharedArrayBuffer>();
let bufferArrived: (() => void) | undefined;
let socket: Socket | undefined;
let stopped = false;

function tell(message: FromWorker): void {
  port.postMessage(message);
}

function fail(kind: 'timeout' | 'link', message: string): void {
  if (stopped) return;
  stopped = true;
  tell({ type: 'failed', kind, message });
  queue.close();
  socket?.destroy();
}

port.on('message', (message: ToSendWorker) => {
  if (message.type === 'buffer') {
    buffers.set(message.id, message.buffer);
    bufferArrived?.();
  } else {
    stopped = true;
    socket?.destroy();
    port.close();
  }
});

/** Buffers are announced by postMessage, which may arrive after the record that uses them. */
async function bufferFor(id: number): Promise<SharedArrayBuffer> {
  for (;;) {
    const buffer = buffers.get(id);
    if (buffer) return buffer;
    await new Promise<void>((resolve) => (bufferArrived = resolve));
  }
}

async function pump(out: Socket): Promise<void> {
  let taken = 0;
  while (!stopped) {
    if (queue.produced === taken) {
      await queue.changed(PRODUCED, taken, Infinity);
      if (queue.closed) return;
      continue;
    }
    const record = queue.read(taken);
    taken = (taken + 1) | 0;
    const buffer = await bufferFor(record[SEND_RECORD.bufferId]!);
    const payload = new Uint8Array(buffer, record[SEND_RECORD.byteOffset]!, record[SEND_RECORD.byteLength]!);
    out.cork();
    out.write(encodeDataFrameHeader({ op: record[SEND_RECORD.op]!, frame: record[SEND_RECORD.frame]!, length: payload.byteLength }));
    out.write(payload, (error) => {
      if (error) fail('link', connectionLost('next', data.nextLabel, error).message);
      else queue.advance(CONSUMED);
    });
    out.uncork();
  }
}

async function main(): Promise<void> {
  const offer = await offerDataConnection(data.host);
  tell({ type: 'offer', port: offer.port, token: offer.token });
  try {
    socket = await offer.accepted(data.deadline);
  } finally {
    offer.close();
  }
  const reset = (error?: Error) => fail('link', connectionLost('next', data.nextLabel, error).message);
  socket.on('error', reset);
  socket.on('close', () => reset());
  tell({ type: 'connected' });
  await pump(socket);
}

main().catch((error: unknown) => fail((error as { kind?: string }).kind === 'timeout' ? 'timeout' : 'link', (error as Error).message));
