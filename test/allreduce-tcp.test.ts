import { afterEach, describe, expect, it } from 'vitest';
import { RingError } from '../peer/allreduce/ring-errors.js';
import { encodeDataFrameHeader } from '../peer/allreduce/tcp/data-frame.js';
import { offerDataConnection, openDataConnection } from '../peer/allreduce/tcp/data-plane-setup.js';
import { TcpRingChannel } from '../peer/allreduce/tcp/tcp-ring-channel.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** One direction of the data plane inside this process: `sender` writes, `channel.receive` reads. */
async function dataPair(reader = { slotBytes: 1024, slots: 2, maxFrameBytes: 1 << 20 }) {
  const offer = await offerDataConnection('127.0.0.1');
  const deadline = Date.now() + 5_000;
  const [sender, opened] = await Promise.all([offer.accepted(deadline), openDataConnection({ host: '127.0.0.1', port: offer.port, token: offer.token, deadline, reader })]);
  // The channel's "previous" side is the socket we read from; sends go out on `sender`.
  const channel = new TcpRingChannel(sender, opened.socket, opened.reader, { next: 'test-next', previous: 'test-previous' }, 5_000);
  cleanups.push(() => channel.close());
  return { channel, sender, receiverSocket: opened.socket };
}

function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

describe('TCP data plane', () => {
  it('delivers frames in order and intact: empty, small, larger than a slot, many queued ahead of the reader', async () => {
    const { channel } = await dataPair();
    const sizes = [0, 1, 7, 1024, 5000, 0, 64 * 1024, 3, 1023];
    // Everything is sent before anything is read: the reader must pause on full slots and resume.
    const sends = sizes.map((size, frame) => channel.send({ op: 9, frame }, pattern(size, frame)));
    for (const [frame, size] of sizes.entries()) {
      const received = await channel.receive(5_000);
      expect(received.tag).toEqual({ op: 9, frame });
      expect(Buffer.from(received.bytes).equals(Buffer.from(pattern(size, frame)))).toBe(true);
    }
    await Promise.all(sends);
  });

  it('keeps a received frame intact until the next receive, even while more frames arrive', async () => {
    const { channel } = await dataPair({ slotBytes: 256, slots: 2, maxFrameBytes: 4096 });
    void channel.send({ op: 1, frame: 0 }, pattern(200, 0));
    const first = await channel.receive(5_000);
    const copy = Buffer.from(first.bytes);
    const later = [1, 2, 3].map((frame) => channel.send({ op: 1, frame }, pattern(200, frame)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(Buffer.from(first.bytes).equals(copy)).toBe(true);
    for (const frame of [1, 2, 3]) {
      const received = await channel.receive(5_000);
      expect(received.tag.frame).toBe(frame);
      expect(Buffer.from(received.bytes).equals(Buffer.from(pattern(200, frame)))).toBe(true);
    }
    await Promise.all(later);
  });

  it('reads a frame with a target straight into it, others into slots', async () => {
    const { channel } = await dataPair();
    const target = new Uint8Array(3000);
    channel.setFrameTargets((tag, byteLength) => (tag.op === 4 && tag.frame === 1 && byteLength === 3000 ? target : undefined));
    await Promise.all([0, 1, 2].map((frame) => channel.send({ op: 4, frame }, pattern(3000, frame))));
    const frames = [];
    for (let i = 0; i < 3; i++) {
      const received = await channel.receive(5_000);
      frames.push({ same: received.bytes.buffer === target.buffer && received.bytes.byteOffset === target.byteOffset, copy: Buffer.from(received.bytes) });
    }
    expect(frames.map((f) => f.same)).toEqual([false, true, false]);
    frames.forEach((f, i) => expect(f.copy.equals(Buffer.from(pattern(3000, i)))).toBe(true));
    expect(Buffer.from(target).equals(Buffer.from(pattern(3000, 1)))).toBe(true);
    channel.setFrameTargets(undefined);
  });

  it('refuses a connection with the wrong token and still accepts the right one', async () => {
    const offer = await offerDataConnection('127.0.0.1');
    const deadline = Date.now() + 3_000;
    const accepted = offer.accepted(deadline);
    const intruder = openDataConnection({ host: '127.0.0.1', port: offer.port, token: 'ab'.repeat(32), deadline, reader: { slotBytes: 16, slots: 2, maxFrameBytes: 64 } });
    await expect(intruder).rejects.toThrow(/closed during setup/);
    const genuine = await openDataConnection({ host: '127.0.0.1', port: offer.port, token: offer.token, deadline, reader: { slotBytes: 16, slots: 2, maxFrameBytes: 64 } });
    const sender = await accepted;
    cleanups.push(() => {
      sender.destroy();
      genuine.socket.destroy();
    });
    expect(sender.remotePort).toBe(genuine.socket.localPort);
  });

  it('gives up on a receiver that never dials, with a timeout', async () => {
    const offer = await offerDataConnection('127.0.0.1');
    await expect(offer.accepted(Date.now() + 200)).rejects.toThrow(/did not open its data connection in time/);
  });

  it('treats a garbled stream as a protocol violation', async () => {
    const { channel, sender } = await dataPair();
    sender.write(Buffer.from('this is not a ringpipe data frame'));
    await expect(channel.receive(5_000)).rejects.toThrow(/protocol violation .*bad frame magic/);
  });

  it('refuses a frame larger than the limit instead of allocating it', async () => {
    const { channel, sender } = await dataPair({ slotBytes: 64, slots: 2, maxFrameBytes: 1024 });
    sender.write(encodeDataFrameHeader({ op: 0, frame: 0, length: 2 ** 31 }));
    const error = await channel.receive(5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RingError);
    expect((error as Error).message).toMatch(/frame of 2147483648 bytes exceeds the limit of 1024/);
  });

  it('fails pending receives at once when the sender goes away', async () => {
    const { channel, sender } = await dataPair();
    const pending = channel.receive(10_000);
    const started = Date.now();
    sender.destroy();
    await expect(pending).rejects.toThrow(/data connection .* (closed|was reset)/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('times out a receive when nothing arrives', async () => {
    const { channel } = await dataPair();
    await expect(channel.receive(150)).rejects.toThrow(/no data from the previous rank .* within 150 ms/);
  });
});
