/**
 * Links to real child processes: the handshake across processes, a peer that freezes (SIGSTOP) or
 * dies (SIGKILL) while we wait on it, and back-pressure against a reader that does not read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/log/logger.js';
import { connect, TransportError, type Link, type LinkCloseInfo, type TransportLimits } from '../shared/transport/index.js';
import { TEST_CLUSTER, TEST_SECRET, testMessages, type TestMessage } from './fixtures/transport-messages.js';
import { spawnFixture, type FixtureProcess } from './fixtures/transport-spawn.js';
import { waitFor } from './fixtures/wait-for.js';

const logger = createLogger('transport-process-test', { level: 'silent' });
const children: FixtureProcess[] = [];
const links: Link<TestMessage>[] = [];

afterEach(async () => {
  for (const link of links.splice(0)) link.close();
  await Promise.all(children.splice(0).map((child) => child.stop()));
});

async function startListener(env: NodeJS.ProcessEnv = {}): Promise<FixtureProcess> {
  const child = await spawnFixture('./transport-listener.ts', { RINGPIPE_SECRET: TEST_SECRET, ...env });
  children.push(child);
  return child;
}

async function dial(port: number, overrides: { secret?: string; limits?: Partial<TransportLimits> } = {}): Promise<Link<TestMessage>> {
  const link = await connect<TestMessage>({
    host: '127.0.0.1',
    port,
    cluster: TEST_CLUSTER,
    nodeId: 'test-client',
    role: 'peer',
    messages: testMessages,
    secret: overrides.secret ?? TEST_SECRET,
    limits: overrides.limits,
    logger,
    timeoutMs: 10_000,
  });
  links.push(link);
  return link;
}

function closeOf(link: Link<TestMessage>): Promise<LinkCloseInfo> {
  return new Promise((resolve) => link.once('close', resolve));
}

describe('links to another process', () => {
  it('authenticates with the secret from the environment and round-trips control and tensors', async () => {
    const child = await startListener();
    const link = await dial(child.port);
    expect(link.peer).toMatchObject({ nodeId: 'fixture-listener', role: 'coordinator' });
    await link.sendControl({ type: 'echo', text: 'across processes', n: 7 });
    expect(await link.nextControl('echo', { timeoutMs: 5_000 })).toEqual({ type: 'echo', text: 'across processes', n: 7 });
    const data = Float32Array.from({ length: 250_001 }, (_, i) => i * 0.5);
    await link.sendTensor({ epoch: 4, step: 2, tensorId: 9 }, data);
    const into = new Float32Array(data.length);
    const echoed = await link.nextTensor({ into, timeoutMs: 5_000 });
    expect(echoed.header).toMatchObject({ epoch: 4, step: 2, tensorId: 9, length: data.length });
    expect(into).toEqual(data);
  });

  it('is refused with a wrong secret, and the listener process logs why', async () => {
    const child = await startListener();
    const error = await dial(child.port, { secret: 'definitely-not-the-secret' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).message).toMatch(/^refused by 127\.0\.0\.1:\d+: wrong cluster secret — set RINGPIPE_SECRET to the coordinator's secret/);
    await child.waitForStderr('wrong cluster secret (its proof does not match', 5_000);
  });
});

describe('liveness', () => {
  const heartbeat: Partial<TransportLimits> = { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500 };

  it('declares a SIGSTOPped peer dead after the heartbeat timeout and fails pending waits', async () => {
    const child = await startListener({ FIXTURE_LIMITS: JSON.stringify(heartbeat) });
    const link = await dial(child.port, { limits: heartbeat });
    await link.sendControl({ type: 'getState' });
    await link.nextControl('state', { timeoutMs: 5_000 });
    const closed = closeOf(link);
    const pending = link.nextControl('state', { timeoutMs: 30_000 });
    const stoppedAt = Date.now();
    child.child.kill('SIGSTOP');
    const info = await closed;
    const elapsed = Date.now() - stoppedAt;
    expect(info).toMatchObject({ code: 4002, byPeer: false });
    expect(info.reason).toMatch(/^heartbeat timeout: nothing heard from the peer for \d+ ms/);
    await expect(pending).rejects.toMatchObject({ code: 'closed', message: expect.stringMatching(/heartbeat timeout/) });
    // Declared dead no earlier than the timeout, and soon after it (ticks are timeout / 5).
    expect(elapsed).toBeGreaterThanOrEqual(1_500 - 50);
    expect(elapsed).toBeLessThan(1_500 + 2_500);
  });

  it('notices a SIGKILLed peer at once and fails pending waits', async () => {
    const child = await startListener({ FIXTURE_LIMITS: JSON.stringify(heartbeat) });
    const link = await dial(child.port, { limits: heartbeat });
    const closed = closeOf(link);
    const pendingTensor = link.nextTensor({ timeoutMs: 30_000 });
    const killedAt = Date.now();
    child.child.kill('SIGKILL');
    const info = await closed;
    expect(Date.now() - killedAt).toBeLessThan(1_500 + 1_500);
    expect(info.byPeer).toBe(true);
    expect(info.reason).toMatch(/connection lost|heartbeat timeout/);
    await expect(pendingTensor).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('back-pressure across processes', () => {
  const MiB = 1024 * 1024;

  it('a reader that does not read holds the sender to one receive window; nothing is lost', async () => {
    const child = await startListener({
      FIXTURE_HOLD_TENSORS: '1',
      FIXTURE_LIMITS: JSON.stringify({ maxTensorBytes: MiB, receiveWindowBytes: 4 * MiB }),
    });
    const link = await dial(child.port, { limits: { maxTensorBytes: MiB, receiveWindowBytes: 4 * MiB } });
    const frame = new Uint8Array(MiB).map((_, i) => i % 253);
    const frames = 40;
    let resolved = 0;
    const sends = Array.from({ length: frames }, (_, i) =>
      link.sendTensor({ epoch: 0, step: i, tensorId: 0 }, frame, { timeoutMs: 30_000 }).then(() => void resolved++),
    );
    const before = process.memoryUsage();
    await waitFor(() => resolved >= 4, 10_000, 'one window of sends to complete');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(resolved).toBe(4); // one window of 4 MiB, and not a frame more
    expect(link.bufferedAmount).toBeLessThanOrEqual(MiB);
    // 40 MiB were handed to sendTensor: none of it may have been copied into a queue.
    const after = process.memoryUsage();
    expect(after.heapUsed - before.heapUsed).toBeLessThan(16 * MiB);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(8 * MiB);
    await link.sendControl({ type: 'readTensors', count: frames });
    const report = await link.nextControl('tensorsRead', { timeoutMs: 20_000 });
    await Promise.all(sends);
    expect(resolved).toBe(frames);
    expect(report.queuedMax).toBeLessThanOrEqual(4 * MiB);
    let expected = 0;
    for (let f = 0; f < frames; f++) for (let j = 0; j < frame.length; j += 4096) expected = (expected + (frame[j] as number)) % 1_000_000_007;
    expect(report.checksum).toBe(expected);
  });

  it('a frozen reader (SIGSTOP) makes sends wait at the high-water mark instead of queueing', async () => {
    const big = { maxTensorBytes: MiB, receiveWindowBytes: 256 * MiB, heartbeatTimeoutMs: 20_000 };
    const child = await startListener({ FIXTURE_HOLD_TENSORS: '1', FIXTURE_LIMITS: JSON.stringify(big) });
    const link = await dial(child.port, { limits: { ...big, sendHighWaterBytes: 2 * MiB } });
    child.child.kill('SIGSTOP');
    const frame = new Uint8Array(MiB);
    const frames = 64;
    let resolved = 0;
    let maxBuffered = 0;
    const sends = Array.from({ length: frames }, (_, i) =>
      link.sendTensor({ epoch: 0, step: i, tensorId: 0 }, frame, { timeoutMs: 30_000 }).then(() => void resolved++),
    );
    const before = process.memoryUsage().arrayBuffers;
    const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, link.bufferedAmount)), 5);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    clearInterval(sampler);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * MiB);
    // The kernel's socket buffers take some; the rest must wait in the caller, not in our queue.
    expect(resolved).toBeLessThan(frames / 2);
    expect(maxBuffered).toBeLessThanOrEqual(3 * MiB);
    child.child.kill('SIGCONT');
    await link.sendControl({ type: 'readTensors', count: frames });
    const report = await link.nextControl('tensorsRead', { timeoutMs: 20_000 });
    await Promise.all(sends);
    expect(report.count).toBe(frames);
  });
});
