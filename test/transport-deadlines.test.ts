/**
 * The pieces that keep the per-frame receive path cheap: one deadline queue per link instead of a
 * timer per wait, and an inbox that keeps views of the socket's chunks instead of copying a frame
 * nobody waits for yet (copied once, when taken; compacted when the views would pin much more).
 */
import { describe, expect, it } from 'vitest';
import { TransportError } from '../shared/transport/errors.js';
import { DeadlineQueue } from '../shared/transport/link/deadline-queue.js';
import { PendingWait } from '../shared/transport/link/pending-wait.js';
import { TensorInbox } from '../shared/transport/link/tensor-inbox.js';
import type { TensorHeader } from '../shared/transport/wire/tensor-header.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function wait(queue: DeadlineQueue, timeoutMs: number, expired: string[], name: string): PendingWait<string> {
  const w = new PendingWait<string>(timeoutMs, (ms) => `${name} timed out after ${ms} ms`, () => expired.push(name), queue);
  w.promise.catch(() => undefined);
  return w;
}

describe('deadline queue', () => {
  it('expires each wait at its own deadline with one timer, whatever the order they were added in', async () => {
    const queue = new DeadlineQueue();
    const expired: string[] = [];
    const slow = wait(queue, 150, expired, 'slow');
    const fast = wait(queue, 30, expired, 'fast');
    const never = wait(queue, Infinity, expired, 'never');
    const settled = wait(queue, 60, expired, 'settled');
    settled.resolve('done');
    expect(queue.size).toBe(2); // the settled wait left, the infinite one never entered
    await expect(fast.promise).rejects.toThrow(new TransportError('timeout', 'fast timed out after 30 ms'));
    expect(expired).toEqual(['fast']);
    expect(slow.isSettled).toBe(false);
    await expect(slow.promise).rejects.toThrow('slow timed out after 150 ms');
    expect(expired).toEqual(['fast', 'slow']);
    expect(await settled.promise).toBe('done');
    expect(never.isSettled).toBe(false);
    expect(queue.size).toBe(0);
  });

  it('never fires late when a shorter wait arrives after a longer one, and forgets everything on clear', async () => {
    const queue = new DeadlineQueue();
    const expired: string[] = [];
    const started = performance.now();
    wait(queue, 10_000, expired, 'long');
    const short = wait(queue, 20, expired, 'short');
    await expect(short.promise).rejects.toThrow('short timed out');
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(queue.size).toBe(1);
    queue.clear();
    expect(queue.size).toBe(0);
  });

  it('keeps hundreds of waits straight as they settle out of order', async () => {
    const queue = new DeadlineQueue();
    const expired: string[] = [];
    const waits = Array.from({ length: 300 }, (_, i) => wait(queue, i % 3 === 0 ? 25 : 60_000, expired, `w${i}`));
    for (const [i, w] of waits.entries()) if (i % 2 === 1) w.resolve('ok');
    await sleep(80);
    // Due: the short ones (i % 3 == 0) that were not resolved (i even), i.e. i % 6 == 0.
    expect(expired.length).toBe(waits.filter((_, i) => i % 6 === 0).length);
    expect(expired.every((name) => Number(name.slice(1)) % 6 === 0)).toBe(true);
    expect(queue.size).toBe(waits.filter((w) => !w.isSettled).length);
    queue.clear();
  });
});

describe('tensor inbox without copies ahead of time', () => {
  const header = (length: number, offset = 0): TensorHeader => ({ epoch: 1, step: 0, tensorId: 0, offset, length, totalLength: offset + length, dtype: 'float32' });
  const floats = (n: number, base: number) => Float32Array.from({ length: n }, (_, i) => base + i);
  /** The payload as the socket would deliver it: separate read chunks, each with other bytes around. */
  function chunks(values: Float32Array, cuts: number[]): { chunk: Buffer; start: number; end: number }[] {
    const bytes = Buffer.from(values.buffer);
    const pieces = [];
    let at = 0;
    for (const cut of [...cuts, bytes.length]) {
      // Buffer.alloc: a chunk of its own, as Node's reads are (Buffer.concat would share an 8 KiB pool).
      const chunk = Buffer.alloc(4 + cut - at + 1, 9);
      bytes.copy(chunk, 4, at, cut);
      pieces.push({ chunk, start: 4, end: 4 + cut - at });
      at = cut;
    }
    return pieces;
  }

  it('copies a frame that arrived in pieces before its waiter once, into the waiter buffer', async () => {
    let consumed = 0;
    const inbox = new TensorInbox((n) => (consumed += n), () => 'timeout', new DeadlineQueue());
    const values = floats(64, 100);
    const h = header(64, 8);
    const writer = inbox.destinationFor(h);
    const pieces = chunks(values, [10, 101]);
    writer.write(pieces[0]!.chunk, pieces[0]!.start, pieces[0]!.end);
    writer.write(pieces[1]!.chunk, pieces[1]!.start, pieces[1]!.end);
    const into = new Float32Array(80);
    const next = inbox.next(into, 1_000); // claims the arriving frame: what came so far is copied now
    pieces[0]!.chunk.fill(0); // the views were consumed by the claim, later changes do not matter
    writer.write(pieces[2]!.chunk, pieces[2]!.start, pieces[2]!.end);
    inbox.complete(h);
    const frame = await next;
    expect(frame.data.buffer).toBe(into.buffer);
    expect(Array.from(frame.data)).toEqual(Array.from(values));
    expect(Array.from(into.subarray(0, 8))).toEqual(new Array(8).fill(0));
    expect(consumed).toBe(256);
  });

  it('queues frames as views and hands them over copied into `into`, as an aligned view, or joined', async () => {
    const inbox = new TensorInbox(() => undefined, () => 'timeout', new DeadlineQueue());
    const deliver = (values: Float32Array, cuts: number[], step: number) => {
      const h = { ...header(values.length), step };
      const writer = inbox.destinationFor(h);
      for (const piece of chunks(values, cuts)) writer.write(piece.chunk, piece.start, piece.end);
      inbox.complete(h);
    };
    deliver(floats(16, 1), [20], 1);
    deliver(floats(16, 2), [], 2);
    deliver(floats(16, 3), [4, 8, 40], 3);
    expect(inbox.queuedBytes).toBe(192);
    const into = new Float32Array(16);
    expect(Array.from((await inbox.next(into, 1_000)).data)).toEqual(Array.from(floats(16, 1)));
    const single = await inbox.next(undefined, 1_000);
    expect(single.data).toBeInstanceOf(Float32Array);
    expect(single.data.buffer.byteLength).toBe(4 + 64 + 1); // a view of the read chunk itself, not a copy
    expect(Array.from(single.data)).toEqual(Array.from(floats(16, 2)));
    const joined = await inbox.next(undefined, 1_000);
    expect(Array.from(joined.data)).toEqual(Array.from(floats(16, 3)));
    expect(inbox.queuedBytes).toBe(0);
  });

  it('copies a small queued frame out of a big read chunk instead of pinning the chunk', async () => {
    const inbox = new TensorInbox(() => undefined, () => 'timeout', new DeadlineQueue());
    const h = header(2);
    const big = Buffer.alloc(64 * 1024, 5);
    Buffer.from(Float32Array.from([1.5, 2.5]).buffer).copy(big, 1000);
    inbox.destinationFor(h).write(big, 1000, 1008);
    inbox.complete(h);
    big.fill(0); // were the chunk still referenced, the frame would now read zeros
    const frame = await inbox.next(undefined, 1_000);
    expect(Array.from(frame.data)).toEqual([1.5, 2.5]);
    expect((frame.data.buffer as ArrayBuffer).byteLength).toBeLessThan(1024);
  });
});
