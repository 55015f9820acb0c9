import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createLogger } from '../shared/log/logger.js';
import {
  CloseCode,
  connect,
  listen,
  TransportError,
  type Link,
  type LinkCloseInfo,
  type LinkServer,
  type ListenOptions,
  type Refused,
  type TransportLimits,
} from '../shared/transport/index.js';
import { encodeControlFrame } from '../shared/transport/wire/control-codec.js';
import { FrameKind } from '../shared/transport/wire/frame-prefix.js';
import { encodeTensorHeader } from '../shared/transport/wire/tensor-header.js';
import { TEST_CLUSTER, TEST_SECRET, testMessages, type TestMessage } from './fixtures/transport-messages.js';
import { nextBinary, rawWsClient } from './fixtures/transport-raw-client.js';
import { waitFor } from './fixtures/wait-for.js';

const logger = createLogger('transport-test', { level: 'silent' });
const limits: Partial<TransportLimits> = { maxTensorBytes: 1 << 20, receiveWindowBytes: 2 << 20, authTimeoutMs: 2_000 };
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Started {
  server: LinkServer<TestMessage>;
  links: Link<TestMessage>[];
  refused: Refused[];
  nextLink(timeoutMs?: number): Promise<Link<TestMessage>>;
}

async function startServer(overrides: Partial<ListenOptions<TestMessage>> = {}): Promise<Started> {
  const links: Link<TestMessage>[] = [];
  const refused: Refused[] = [];
  const waiters: ((link: Link<TestMessage>) => void)[] = [];
  const server = await listen<TestMessage>({
    cluster: TEST_CLUSTER,
    nodeId: 'server',
    role: 'coordinator',
    messages: testMessages,
    secret: TEST_SECRET,
    limits,
    logger,
    onLink: (link) => {
      links.push(link);
      waiters.shift()?.(link);
    },
    onRefused: (info) => refused.push(info),
    ...overrides,
  });
  cleanups.push(() => server.close());
  return {
    server,
    links,
    refused,
    nextLink(timeoutMs = 5_000) {
      const ready = links.at(-1);
      if (ready && !waiters.length) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no link within timeout')), timeoutMs);
        waiters.push((link) => {
          clearTimeout(timer);
          resolve(link);
        });
      });
    },
  };
}

async function dial(port: number, overrides: Record<string, unknown> = {}): Promise<Link<TestMessage>> {
  const link = await connect<TestMessage>({
    host: '127.0.0.1',
    port,
    cluster: TEST_CLUSTER,
    nodeId: 'client',
    role: 'peer',
    messages: testMessages,
    secret: TEST_SECRET,
    limits,
    logger,
    timeoutMs: 5_000,
    ...overrides,
  });
  cleanups.push(() => link.close());
  return link;
}

async function refusal(promise: Promise<unknown>): Promise<TransportError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TransportError);
  return error as TransportError;
}

describe('handshake', () => {
  it('authenticates both sides and tells each who the other is', async () => {
    const { server, nextLink } = await startServer();
    const client = await dial(server.port);
    const accepted = await nextLink();
    expect(client.peer).toMatchObject({ nodeId: 'server', role: 'coordinator', cluster: TEST_CLUSTER, address: '127.0.0.1', port: server.port });
    expect(accepted.peer).toMatchObject({ nodeId: 'client', role: 'peer', cluster: TEST_CLUSTER, address: '127.0.0.1' });
    expect(server.links.size).toBe(1);
  });

  it('refuses a wrong secret, with the reason on both sides, and lets nothing through', async () => {
    const { server, links, refused } = await startServer();
    const error = await refusal(dial(server.port, { secret: 'not-the-cluster-secret-000' }));
    expect(error.code).toBe('refused');
    expect(error.message).toMatch(
      new RegExp(`^refused by 127\\.0\\.0\\.1:${server.port}: wrong cluster secret — set RINGPIPE_SECRET to the coordinator's secret`),
    );
    await waitFor(() => refused.length === 1, 2_000, 'server refusal');
    expect(refused[0]?.reason).toMatch(/refused client \(peer\) at 127\.0\.0\.1:\d+: wrong cluster secret/);
    expect(links).toHaveLength(0);
  });

  it('refuses another cluster name on both sides', async () => {
    const { server, refused, links } = await startServer();
    const error = await refusal(dial(server.port, { cluster: 'someone-else' }));
    expect(error.message).toMatch(/refused by 127\.0\.0\.1:\d+: cluster name mismatch: it belongs to cluster 'transport-test', this node asked for 'someone-else'/);
    await waitFor(() => refused.length === 1, 2_000, 'server refusal');
    expect(refused[0]?.reason).toMatch(/it belongs to cluster 'someone-else', this node to 'transport-test'/);
    expect(links).toHaveLength(0);
  });

  it('refuses another protocol version on both sides', async () => {
    const { server, refused, links } = await startServer();
    const error = await refusal(dial(server.port, { protocolVersion: 99 }));
    expect(error.message).toMatch(/refused by 127\.0\.0\.1:\d+: protocol version mismatch: it speaks ringpipe protocol 1, this node speaks 99/);
    await waitFor(() => refused.length === 1, 2_000, 'server refusal');
    expect(refused[0]?.reason).toMatch(/it speaks protocol version 99, this node speaks 1/);
    expect(links).toHaveLength(0);
  });

  it('refuses a node without a secret when the cluster has one, and the other way round', async () => {
    const secured = await startServer();
    const noSecret = await refusal(dial(secured.server.port, { secret: undefined, env: {} }));
    expect(noSecret.message).toMatch(/the cluster requires a secret and this node has none — set RINGPIPE_SECRET/);
    await waitFor(() => secured.refused.length === 1, 2_000, 'server refusal');
    expect(secured.refused[0]?.reason).toMatch(/it has no cluster secret/);

    const open = await startServer({ secret: undefined, env: {} });
    const extra = await refusal(dial(open.server.port));
    expect(extra.message).toMatch(/it runs without a cluster secret but this node has one/);
  });

  it('runs without a secret on loopback, and refuses to listen elsewhere without one', async () => {
    const { server } = await startServer({ secret: undefined, env: {} });
    const link = await dial(server.port, { secret: undefined, env: {} });
    expect(link.isOpen).toBe(true);
    await expect(startServer({ secret: undefined, env: {}, host: '0.0.0.0' })).rejects.toThrow(/no cluster secret: refusing to listen on 0\.0\.0\.0/);
  });

  it('says what to do when the port is taken', async () => {
    const { server } = await startServer();
    await expect(startServer({ port: server.port })).rejects.toThrow(/EADDRINUSE.*another process holds this port/);
  });

  it('reports a clear error when nothing listens', async () => {
    const { server } = await startServer();
    const port = server.port;
    await server.close();
    const error = await refusal(dial(port));
    expect(error.code).toBe('connect');
    expect(error.message).toMatch(/cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED.*is a ringpipe node listening there\?/);
  });
});

describe('liveness', () => {
  it('keeps an idle link alive well past the heartbeat timeout (pings are answered)', async () => {
    const quick = { ...limits, heartbeatIntervalMs: 50, heartbeatTimeoutMs: 300 };
    const { server, nextLink } = await startServer({ limits: quick });
    const client = await dial(server.port, { limits: quick });
    const accepted = await nextLink();
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(client.closeInfo).toBeUndefined();
    expect(accepted.closeInfo).toBeUndefined();
    await client.sendControl({ type: 'getState' });
    expect(await accepted.nextControl('getState', { timeoutMs: 2_000 })).toEqual({ type: 'getState' });
  });
});

describe('control messages', () => {
  it('round-trips, queues until asked, and delivers to subscribers', async () => {
    const { server, nextLink } = await startServer();
    const client = await dial(server.port);
    const accepted = await nextLink();
    await client.sendControl({ type: 'echo', text: 'first', n: 1 });
    await client.sendControl({ type: 'setState', value: 'x' });
    await client.sendControl({ type: 'echo', text: 'second', n: 2 });
    // Asking for a later type first does not lose the earlier ones.
    expect(await accepted.nextControl('setState', { timeoutMs: 2_000 })).toEqual({ type: 'setState', value: 'x' });
    const seen: number[] = [];
    accepted.onControl('echo', (message) => seen.push(message.n));
    await waitFor(() => seen.length === 2, 2_000, 'echo messages');
    expect(seen).toEqual([1, 2]);
  });

  it('times out a wait with a clear error, and rejects pending waits when the link dies', async () => {
    const { server, nextLink } = await startServer();
    const client = await dial(server.port);
    const accepted = await nextLink();
    await expect(client.nextControl('state', { timeoutMs: 50 })).rejects.toThrow(/timed out after 50 ms waiting for a 'state' message from server \(coordinator\)/);
    const pendingControl = client.nextControl('state', { timeoutMs: 5_000 });
    const pendingTensor = client.nextTensor({ timeoutMs: 5_000 });
    const closed = new Promise<LinkCloseInfo>((resolve) => client.once('close', resolve));
    accepted.close('test is done with you');
    await expect(pendingControl).rejects.toMatchObject({ code: 'closed', message: expect.stringMatching(/closed by peer: test is done with you/) });
    await expect(pendingTensor).rejects.toMatchObject({ code: 'closed' });
    expect(await closed).toMatchObject({ code: CloseCode.normal, byPeer: true });
    await expect(client.nextControl('state')).rejects.toMatchObject({ code: 'closed' });
    expect(() => client.sendControl({ type: 'getState' })).toThrow(/is closed/);
  });

  it('refuses to send messages that do not match the registry', async () => {
    const { server } = await startServer();
    const client = await dial(server.port);
    expect(() => client.sendControl({ type: 'echo', text: 1 } as never)).toThrow(/cannot send control message: invalid 'echo'/);
    expect(() => client.sendControl({ type: 'bogus' } as never)).toThrow(/unknown control message type "bogus"/);
    await expect(client.nextControl('bogus' as never)).rejects.toThrow(/not a message type of this link/);
  });
});

describe('tensor frames', () => {
  it('round-trips every dtype at odd lengths, zero-length included, with aligned views', async () => {
    const { server, nextLink } = await startServer();
    const client = await dial(server.port);
    const accepted = await nextLink();
    const cases = [
      Float32Array.from({ length: 1 }, (_, i) => i + 0.5),
      Float32Array.from({ length: 3 }, (_, i) => -i - 0.25),
      Float32Array.from({ length: 100_003 }, (_, i) => Math.sin(i)),
      Int32Array.from({ length: 7 }, (_, i) => i * -1_000_003),
      Uint8Array.from({ length: 13 }, (_, i) => (i * 37) % 256),
      new Float32Array(0),
    ];
    for (const [index, data] of cases.entries()) {
      await client.sendTensor({ epoch: 2, step: index, tensorId: 40 + index }, data);
      const frame = await accepted.nextTensor({ timeoutMs: 2_000 });
      expect(frame.header).toMatchObject({ epoch: 2, step: index, tensorId: 40 + index, offset: 0, length: data.length, totalLength: data.length });
      expect(frame.data.constructor).toBe(data.constructor);
      expect(frame.data.byteOffset % frame.data.BYTES_PER_ELEMENT).toBe(0);
      expect(Array.from(frame.data)).toEqual(Array.from(data));
    }
  });

  it('sends from a misaligned byte view and receives chunks into a caller buffer at their offsets', async () => {
    const { server, nextLink } = await startServer();
    const client = await dial(server.port);
    const accepted = await nextLink();
    const backing = Uint8Array.from({ length: 1001 }, (_, i) => i % 251);
    await client.sendTensor({ epoch: 1, step: 1, tensorId: 1 }, backing.subarray(1));
    const bytes = await accepted.nextTensor({ timeoutMs: 2_000 });
    expect(Array.from(bytes.data)).toEqual(Array.from(backing.subarray(1)));

    const whole = Float32Array.from({ length: 10_001 }, (_, i) => i);
    const into = new Float32Array(10_001);
    const chunks = [
      [0, 3_333],
      [3_333, 6_666],
      [6_666, 10_001],
    ] as const;
    await Promise.all(chunks.map(([from, to], i) => client.sendTensor({ epoch: 1, step: 2, tensorId: i, offset: from, totalLength: whole.length }, whole.subarray(from, to))));
    for (const [from, to] of chunks) {
      const frame = await accepted.nextTensor({ into, timeoutMs: 2_000 });
      expect(frame.data.buffer).toBe(into.buffer);
      expect(frame.header.offset).toBe(from);
      expect(frame.data.length).toBe(to - from);
    }
    expect(into).toEqual(whole);
  });

  it('rejects a receive buffer of the wrong type or size without losing the frame', async () => {
    const { server, nextLink } = await startServer();
    const client = await dial(server.port);
    const accepted = await nextLink();
    await client.sendTensor({ epoch: 0, step: 0, tensorId: 0 }, Float32Array.from([1, 2, 3]));
    await waitFor(() => accepted.queuedTensorBytes === 12, 2_000, 'frame to arrive');
    await expect(accepted.nextTensor({ into: new Int32Array(3) })).rejects.toThrow(/float32 tensor frame but the receive buffer is a Int32Array/);
    await expect(accepted.nextTensor({ into: new Float32Array(2) })).rejects.toThrow(/too small/);
    expect(Array.from((await accepted.nextTensor({ into: new Float32Array(3) })).data)).toEqual([1, 2, 3]);
  });

  it('accepts frames sent right behind the handshake, in the same TCP segment as the welcome', async () => {
    const data = Float32Array.from({ length: 200_000 }, (_, i) => i);
    const { server } = await startServer({
      onLink: (link) => void link.sendTensor({ epoch: 0, step: 0, tensorId: 0 }, data).catch(() => undefined),
    });
    for (let i = 0; i < 5; i++) {
      const client = await dial(server.port);
      const frame = await client.nextTensor({ timeoutMs: 5_000 });
      expect(frame.data.length).toBe(data.length);
      expect(frame.data[199_999]).toBe(199_999);
      client.close();
    }
  });

  it('refuses frames over maxTensorBytes and bad headers at the sender', async () => {
    const { server } = await startServer();
    const client = await dial(server.port);
    expect(() => client.sendTensor({ epoch: 0, step: 0, tensorId: 0 }, new Float32Array((1 << 20) / 4 + 1))).toThrow(/exceeds maxTensorBytes 1048576: split it/);
    expect(() => client.sendTensor({ epoch: -1, step: 0, tensorId: 0 }, new Float32Array(1))).toThrow(/epoch must be an unsigned 32-bit integer/);
    expect(() => client.sendTensor({ epoch: 0, step: 0, tensorId: 0, offset: 5, totalLength: 5 }, new Float32Array(1))).toThrow(/beyond totalLength 5/);
    expect(() => client.sendTensor({ epoch: 0, step: 0, tensorId: 0 }, new Float64Array(1) as never)).toThrow(/Float32Array, Int32Array or Uint8Array/);
  });

  it('applies back-pressure: a reader that does not read stops the sender after one window', async () => {
    const { server, nextLink } = await startServer();
    const client = await dial(server.port);
    const accepted = await nextLink();
    const frame = new Float32Array((256 * 1024) / 4).fill(1);
    const frames = 24; // 6 MiB against a 2 MiB window
    let resolved = 0;
    let maxBuffered = 0;
    const sends = Array.from({ length: frames }, (_, i) =>
      client.sendTensor({ epoch: 0, step: i, tensorId: 0 }, frame, { timeoutMs: 10_000 }).then(() => {
        resolved++;
        maxBuffered = Math.max(maxBuffered, client.bufferedAmount);
      }),
    );
    await waitFor(() => accepted.queuedTensorBytes === 2 << 20, 5_000, 'receive window to fill');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(resolved).toBe(8); // exactly one window (2 MiB / 256 KiB), no more
    expect(accepted.queuedTensorBytes).toBe(2 << 20);
    for (let i = 0; i < frames; i++) {
      const received = await accepted.nextTensor({ timeoutMs: 5_000 });
      expect(received.header.step).toBe(i);
    }
    await Promise.all(sends);
    expect(resolved).toBe(frames);
    expect(maxBuffered).toBeLessThanOrEqual((8 << 20) + frame.byteLength);
  });

  it('settles sends in call order whether the kernel took them at once or later, and delivers every byte', async () => {
    // A window larger than the kernel's socket buffers: sends issued in one go fill those, so later
    // frames are only partly written at first (settled by the socket's callback), earlier ones at once.
    const big = { ...limits, receiveWindowBytes: 32 << 20, sendHighWaterBytes: 32 << 20 };
    const { server, nextLink } = await startServer({ limits: big });
    const client = await dial(server.port, { limits: big });
    const accepted = await nextLink();
    const frames = 24;
    const elements = (1 << 20) / 4;
    const settled: number[] = [];
    const sends = Array.from({ length: frames }, (_, i) =>
      client.sendTensor({ epoch: 0, step: i, tensorId: 0 }, new Float32Array(elements).fill(i), { timeoutMs: 10_000 }).then(() => settled.push(i)),
    );
    expect(client.bufferedAmount).toBeGreaterThan(0); // the kernel did not take everything at once
    const into = new Float32Array(elements);
    for (let i = 0; i < frames; i++) {
      if (i % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 20)); // a reader that falls behind now and then
      const frame = await accepted.nextTensor({ into, timeoutMs: 5_000 });
      expect(frame.header.step).toBe(i);
      expect(into[0] === i && into[into.length - 1] === i).toBe(true);
    }
    await Promise.all(sends);
    expect(settled).toEqual(Array.from({ length: frames }, (_, i) => i));
  });

  it('times out a send that never gets credit', async () => {
    const { server, nextLink } = await startServer();
    const client = await dial(server.port);
    await nextLink();
    const frame = new Uint8Array(1 << 20);
    await client.sendTensor({ epoch: 0, step: 0, tensorId: 0 }, frame);
    await client.sendTensor({ epoch: 0, step: 1, tensorId: 0 }, frame);
    await expect(client.sendTensor({ epoch: 0, step: 2, tensorId: 0 }, frame, { timeoutMs: 150 })).rejects.toThrow(
      /sendTensor to server \(coordinator\) at 127\.0\.0\.1:\d+ timed out after 150 ms: the peer is not reading/,
    );
  });
});

describe('hostile connections', () => {
  async function rawClient(port: number): Promise<WebSocket> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ringpipe`, { perMessageDeflate: false });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return ws;
  }

  function closeOf(ws: WebSocket, timeoutMs = 3_000): Promise<{ code: number; reason: string }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socket not closed in time')), timeoutMs);
      ws.once('close', (code, reason) => {
        clearTimeout(timer);
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  it('closes a connection that sends data frames before authenticating, and keeps serving', async () => {
    const { server, links, nextLink } = await startServer();
    const tensorFirst = await rawClient(server.port);
    const closedTensor = closeOf(tensorFirst);
    tensorFirst.send(Buffer.concat([encodeTensorHeader({ epoch: 0, step: 0, tensorId: 0, offset: 0, length: 1, totalLength: 1, dtype: 'float32' }, 1), Buffer.alloc(4)]));
    expect(await closedTensor).toEqual({ code: CloseCode.protocolViolation, reason: 'protocol violation: tensor frame before authentication' });

    const controlFirst = await rawClient(server.port);
    const closedControl = closeOf(controlFirst);
    controlFirst.send(encodeControlFrame(FrameKind.control, 1, { type: 'setState', value: 'pwned' }, 1024));
    expect((await closedControl).reason).toMatch(/control frame before authentication/);

    const textFirst = await rawClient(server.port);
    const closedText = closeOf(textFirst);
    textFirst.send('hello?');
    expect((await closedText).reason).toMatch(/text frame/);

    expect(links).toHaveLength(0);
    const good = await dial(server.port);
    await good.sendControl({ type: 'echo', text: 'still here', n: 1 });
    expect((await (await nextLink()).nextControl('echo', { timeoutMs: 2_000 })).text).toBe('still here');
  });

  it('sends frames a stock ws receiver accepts, and reads what it sends', async () => {
    const { server, nextLink } = await startServer();
    const ws = await rawWsClient(server.port, true);
    cleanups.push(() => ws.terminate());
    const accepted = await nextLink();
    const data = Float32Array.from({ length: 70_000 }, (_, i) => i / 3);
    const arriving = nextBinary(ws, 5_000);
    await accepted.sendTensor({ epoch: 5, step: 6, tensorId: 7 }, data);
    const message = await arriving; // ws joins the two fragments
    expect(message.length).toBe(32 + data.byteLength);
    expect(Buffer.compare(message.subarray(32), Buffer.from(data.buffer))).toBe(0);
    // And a tensor built by hand through ws's sender (one unfragmented message) is read back.
    const header = encodeTensorHeader({ epoch: 1, step: 2, tensorId: 3, offset: 0, length: 3, totalLength: 3, dtype: 'int32' }, 1);
    ws.send(Buffer.concat([header, Buffer.from(Int32Array.from([7, -8, 9]).buffer)]));
    expect(Array.from((await accepted.nextTensor({ timeoutMs: 2_000 })).data)).toEqual([7, -8, 9]);
  });

  it('answers WebSocket pings', async () => {
    const { server } = await startServer();
    const ws = await rawClient(server.port);
    const pong = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no pong within 2 s')), 2_000);
      ws.once('pong', (data) => {
        clearTimeout(timer);
        resolve(data.toString());
      });
    });
    ws.ping('are you there');
    expect(await pong).toBe('are you there');
    ws.terminate();
  });

  it('caps unauthenticated connections and drops the silent ones after the auth timeout', async () => {
    const { server } = await startServer({ limits: { ...limits, maxPendingConnections: 4, authTimeoutMs: 600 } });
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = netConnect({ host: '127.0.0.1', port: server.port }, () => resolve(socket));
        socket.once('error', reject);
        cleanups.push(() => void socket.destroy());
      });
    const silent = await Promise.all([open(), open(), open(), open()]);
    await waitFor(() => server.pendingConnections === 4, 2_000, 'pending connections to register');
    const extra = await open();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the connection over the cap was not dropped')), 2_000);
      extra.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const dropped = silent.map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    const started = Date.now();
    await Promise.all(dropped);
    expect(Date.now() - started).toBeLessThan(4_000);
    await waitFor(() => server.pendingConnections === 0, 2_000, 'pending count to drop');
    const good = await dial(server.port);
    expect(good.isOpen).toBe(true);
  });

  it('drops a peer that sends too much before authenticating', async () => {
    const { server } = await startServer({ limits: { ...limits, maxPreAuthBytes: 8 * 1024 } });
    const ws = await rawClient(server.port);
    const closed = closeOf(ws);
    // One big session frame of an allowed size: it must be cut off long before it is complete.
    const big = Buffer.alloc(512 * 1024);
    big.set([0x52, 0x50, 0x53, 1]);
    ws.send(big);
    const { reason } = await closed;
    expect(reason === '' || /before authenticating/.test(reason)).toBe(true);
    expect(server.pendingConnections).toBe(0);
  });
});
