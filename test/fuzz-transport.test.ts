/**
 * Throws well over 10,000 hostile frames at a live listener process, before and after
 * authentication: random bytes, mutated and truncated msgpack, messages of unknown types or wrong
 * fields, bad tensor headers, oversize frames, fragment floods, text frames, raw non-WebSocket bytes,
 * handshake messages out of order. Then checks that the process is alive, had no unhandled
 * rejection, kept its state, still serves a legitimate client, and that its memory stayed bounded.
 */
import { Packr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createLogger } from '../shared/log/logger.js';
import { newNonce } from '../shared/transport/auth/proof.js';
import { connect, PROTOCOL_VERSION, type Link } from '../shared/transport/index.js';
import type { Introduction } from '../shared/transport/messages/session-messages.js';
import { encodeControlFrame } from '../shared/transport/wire/control-codec.js';
import { FrameKind } from '../shared/transport/wire/frame-prefix.js';
import { encodeTensorHeader } from '../shared/transport/wire/tensor-header.js';
import { TEST_CLUSTER, TEST_SECRET, testMessages, type TestMessage } from './fixtures/transport-messages.js';
import { rawWsClient } from './fixtures/transport-raw-client.js';
import { spawnFixture, type FixtureProcess } from './fixtures/transport-spawn.js';

const MAX_TENSOR = 64 * 1024;
const FIXTURE_LIMITS = {
  maxTensorBytes: MAX_TENSOR,
  receiveWindowBytes: 2 * MAX_TENSOR,
  maxControlBytes: 4 * 1024,
  maxPreAuthBytes: 16 * 1024,
  maxPendingConnections: 64,
  authTimeoutMs: 3_000,
};
const MAX_PAYLOAD = MAX_TENSOR + 32;
const TARGET_FRAMES = 12_000;
const CONCURRENCY = 8;
const FRAMES_PER_CONNECTION = 10;
/** Stated bounds on what the fuzzing may leave behind in the listener (after a forced GC). */
const HEAP_GROWTH_BOUND = 24 * 1024 * 1024;
const RSS_GROWTH_BOUND = 128 * 1024 * 1024;

const logger = createLogger('fuzz-test', { level: 'silent' });

/** Deterministic PRNG (mulberry32) so a failure can be replayed with the printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const random = prng(seed);
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
const randomBytes = (n: number): Buffer => {
  const bytes = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) bytes[i] = int(256);
  return bytes;
};
const packr = new Packr({ useRecords: false });

function mutate(frame: Buffer): Buffer {
  const copy = Buffer.from(frame);
  switch (int(4)) {
    case 0: // flip a few bytes
      for (let i = 0, n = 1 + int(4); i < n && copy.length; i++) copy[int(copy.length)] = int(256);
      return copy;
    case 1: // truncate
      return copy.subarray(0, int(copy.length));
    case 2: // append junk
      return Buffer.concat([copy, randomBytes(1 + int(16))]);
    default: // keep the prefix, randomize the body
      return Buffer.concat([copy.subarray(0, 4), randomBytes(int(64))]);
  }
}

const validControl = (): Buffer =>
  encodeControlFrame(FrameKind.control, PROTOCOL_VERSION, pick<TestMessage>([
    { type: 'echo', text: 'x'.repeat(int(50)), n: int(1000) },
    { type: 'getState' },
    { type: 'stats' },
  ]), 1 << 20);

const oddControlBodies = (): unknown =>
  pick([
    { type: 'nope' },
    { type: 'echo', text: 5, n: 'five' },
    { type: 'echo', text: 'a', n: 1, extra: true },
    { type: 'setState' },
    { type: ['setState'] },
    [1, 2, 3],
    'just a string',
    null,
    { __proto__: { polluted: true }, type: 'getState' },
    { type: 'echo', text: 'deep', n: 1, nest: [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]] },
    { type: 'setState', value: 'y'.repeat(5000) },
    new Map([['type', 'getState']]),
    { type: 'getState', when: new Date() },
  ]);

function tensorFrame(): Buffer {
  const length = int(64);
  const dtype = pick(['float32', 'int32', 'uint8'] as const);
  const bytesPer = dtype === 'uint8' ? 1 : 4;
  const header = encodeTensorHeader({ epoch: int(3), step: int(3), tensorId: int(3), offset: 0, length, totalLength: length, dtype }, PROTOCOL_VERSION);
  const payload = randomBytes(Math.max(0, length * bytesPer + pick([0, 0, 1, -1, 4, 3])));
  const frame = Buffer.concat([header, payload]);
  switch (int(7)) {
    case 0:
      frame[28] = int(256); // dtype
      break;
    case 1:
      frame.writeUInt32LE(0xffff_fff0, 16); // offset
      break;
    case 2:
      frame.writeUInt32LE(int(0xffffffff), 20); // length
      break;
    case 3:
      frame[29] = 1 + int(255); // reserved
      break;
    case 4:
      frame[3] = PROTOCOL_VERSION + 1 + int(5); // version
      break;
    default:
      break; // sometimes valid, sometimes only the payload length is off
  }
  return frame;
}

type Hostile = { kind: 'frame'; data: Buffer } | { kind: 'text'; data: string } | { kind: 'raw'; data: Buffer } | { kind: 'fragments'; data: Buffer[] };

function hostileFrame(): Hostile {
  switch (int(12)) {
    case 0:
      return { kind: 'frame', data: randomBytes(int(200)) };
    case 1:
      return { kind: 'frame', data: mutate(validControl()) };
    case 2:
      return { kind: 'frame', data: Buffer.concat([Buffer.from([0x52, 0x50, 0x43, PROTOCOL_VERSION]), packr.pack(oddControlBodies())]) };
    case 3:
      return { kind: 'frame', data: tensorFrame() };
    case 4:
      return { kind: 'frame', data: mutate(tensorFrame()) };
    case 5:
      return { kind: 'frame', data: randomBytes(MAX_PAYLOAD + 1 + int(4096)) }; // oversize
    case 6:
      return { kind: 'text', data: 'GET / HTTP/1.1 ' + 'z'.repeat(int(100)) };
    case 7:
      return { kind: 'raw', data: randomBytes(1 + int(64)) }; // not even WebSocket framing
    case 8:
      return { kind: 'fragments', data: Array.from({ length: pick([2, 3, 70, 100]) }, () => randomBytes(int(32))) };
    case 9: // session messages out of place
      return {
        kind: 'frame',
        data: encodeControlFrame(FrameKind.session, PROTOCOL_VERSION, pick([
          { type: 'credit', bytes: pick([1, 2 ** 40, 64 * 1024]) },
          { type: 'welcome', mac: null },
          { type: 'proof', mac: newNonce() },
          { type: 'refuse', code: 'busy', reason: 'go away' },
          { type: 'credit', bytes: -5 },
        ]), 1 << 20),
      };
    case 10:
      return { kind: 'frame', data: mutate(encodeControlFrame(FrameKind.session, PROTOCOL_VERSION, intro('hello'), 1 << 20)) };
    default:
      return { kind: 'frame', data: validControl() };
  }
}

function intro(type: 'hello'): Introduction {
  return { type, protocolVersion: PROTOCOL_VERSION, cluster: TEST_CLUSTER, nodeId: 'fuzzer', role: 'fuzzer', nonce: newNonce(), secured: true, receiveWindow: 1 << 20 };
}

function throwAt(ws: WebSocket, hostile: Hostile): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  switch (hostile.kind) {
    case 'frame':
      ws.send(hostile.data);
      return;
    case 'text':
      ws.send(hostile.data);
      return;
    case 'raw':
      (ws as unknown as { _socket: { write(data: Buffer): void } })._socket.write(hostile.data);
      return;
    case 'fragments':
      hostile.data.forEach((fragment, i) => ws.send(fragment, { fin: i === hostile.data.length - 1 }));
      return;
  }
}

async function fuzzOnce(port: number, authenticate: boolean): Promise<number> {
  let ws: WebSocket;
  try {
    ws = await rawWsClient(port, authenticate);
  } catch (error) {
    const reason = (error as Error).message.slice(0, 60);
    refusedConnections.set(reason, (refusedConnections.get(reason) ?? 0) + 1);
    return 0; // dropped (e.g. over the pending cap): that is the listener defending itself
  }
  const closed = new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve();
    ws.once('close', () => resolve());
  });
  let sent = 0;
  for (let i = 0; i < FRAMES_PER_CONNECTION; i++) {
    throwAt(ws, hostileFrame());
    sent++;
  }
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 150))]);
  ws.terminate();
  return sent;
}

/** Connections the listener did not let us open or authenticate, by reason (reported, not failed). */
const refusedConnections = new Map<string, number>();
let child: FixtureProcess | undefined;
afterAll(async () => {
  await child?.stop();
});

async function statsOf(link: Link<TestMessage>): Promise<{ rss: number; heapUsed: number; unhandled: number; links: number }> {
  await link.sendControl({ type: 'stats' });
  return link.nextControl('statsReply', { timeoutMs: 10_000 });
}

async function legitimateClient(port: number): Promise<Link<TestMessage>> {
  return connect<TestMessage>({
    host: '127.0.0.1',
    port,
    cluster: TEST_CLUSTER,
    nodeId: 'legit',
    role: 'peer',
    messages: testMessages,
    secret: TEST_SECRET,
    logger,
    timeoutMs: 10_000,
  });
}

describe('fuzzing a live listener', () => {
  // ≈ 5–15 s on this 2-core machine; the bound is for when a whole test suite runs beside it.
  it(`survives ${TARGET_FRAMES} hostile frames before and after authentication (seed printed on failure)`, { timeout: 240_000 }, async () => {
    child = await spawnFixture(
      './transport-listener.ts',
      { RINGPIPE_SECRET: TEST_SECRET, RINGPIPE_LOG_LEVEL: 'warn', FIXTURE_LIMITS: JSON.stringify(FIXTURE_LIMITS) },
      ['--expose-gc'],
    );
    const port = child.port;
    const setup = await legitimateClient(port);
    await setup.sendControl({ type: 'setState', value: 'precious' });
    // Warm up the paths the fuzzing will take, so their one-time allocations are in the baseline.
    for (let i = 0; i < 50; i++) await fuzzOnce(port, i % 2 === 0);
    const before = await statsOf(setup);
    setup.close();

    let frames = 0;
    let connections = 0;
    const worker = async (): Promise<void> => {
      while (frames < TARGET_FRAMES) {
        const sent = await fuzzOnce(port, random() < 0.5);
        frames += sent;
        connections++;
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (Date.now() - started) / 1000;

    expect(child.child.exitCode, `listener exited; seed ${seed}`).toBeNull();
    const after = await legitimateClient(port);
    await after.sendControl({ type: 'getState' });
    expect((await after.nextControl('state', { timeoutMs: 10_000 })).value, `state changed; seed ${seed}`).toBe('precious');
    await after.sendControl({ type: 'echo', text: 'still serving', n: 42 });
    expect(await after.nextControl('echo', { timeoutMs: 10_000 })).toEqual({ type: 'echo', text: 'still serving', n: 42 });
    const data = Float32Array.from({ length: 1000 }, (_, i) => i);
    await after.sendTensor({ epoch: 1, step: 1, tensorId: 1 }, data);
    expect(Array.from((await after.nextTensor({ timeoutMs: 10_000 })).data)).toEqual(Array.from(data));

    const stats = await statsOf(after);
    after.close();
    const heapGrowth = stats.heapUsed - before.heapUsed;
    const rssGrowth = stats.rss - before.rss;
    console.log(
      `fuzz seed ${seed}: ${frames} frames over ${connections} connections in ${seconds.toFixed(1)} s; ` +
        `listener heap ${(before.heapUsed / 2 ** 20).toFixed(1)} → ${(stats.heapUsed / 2 ** 20).toFixed(1)} MiB, ` +
        `rss ${(before.rss / 2 ** 20).toFixed(0)} → ${(stats.rss / 2 ** 20).toFixed(0)} MiB; ` +
        `connections not opened: ${JSON.stringify(Object.fromEntries(refusedConnections))}`,
    );
    expect(frames).toBeGreaterThanOrEqual(10_000);
    expect(stats.unhandled, `unhandled rejections in the listener; seed ${seed}`).toBe(0);
    expect(child.stderr()).not.toMatch(/unhandledRejection|uncaught/i);
    expect(heapGrowth, `heap grew ${heapGrowth} bytes; seed ${seed}`).toBeLessThan(HEAP_GROWTH_BOUND);
    expect(rssGrowth, `rss grew ${rssGrowth} bytes; seed ${seed}`).toBeLessThan(RSS_GROWTH_BOUND);
  });
});
