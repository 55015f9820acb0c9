import { randomBytes } from 'node:crypto';
import { Bonjour } from 'bonjour-service';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  advertise,
  browse,
  discoverCoordinator,
  DiscoveryTimeoutError,
  LOOPBACK_INTERFACE,
  mdnsSocketOptions,
  PROTOCOL_VERSION,
  type Advertisement,
  type DiscoveredNode,
  type NodeBrowser,
} from '../shared/discovery/index.js';

// Everything here runs on the host, so mDNS is pinned to loopback (DESIGN.md §3): nothing
// leaves the machine. Random cluster names keep concurrent test runs apart.
const LO = '127.0.0.1';
const WAIT_MS = 2_000;

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

function nextEvent(browser: NodeBrowser, event: 'up' | 'down', predicate: (n: DiscoveredNode) => boolean): Promise<DiscoveredNode> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" event within ${WAIT_MS} ms`)), WAIT_MS);
    const listener = (node: DiscoveredNode) => {
      if (!predicate(node)) return;
      clearTimeout(timer);
      browser.off(event, listener);
      resolve(node);
    };
    browser.on(event, listener);
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function advertiseOnLoopback(options: Omit<Parameters<typeof advertise>[0], 'interface'>): Promise<Advertisement> {
  const ad = await advertise({ ...options, interface: LO });
  cleanups.push(() => ad.stop());
  return ad;
}

async function browseOnLoopback(options: Omit<Parameters<typeof browse>[0], 'interface'>): Promise<NodeBrowser> {
  const browser = await browse({ ...options, interface: 'lo' });
  cleanups.push(() => browser.stop());
  return browser;
}

describe('discovery on loopback', () => {
  it('finds the nodes of its cluster only, with every TXT field and the sender address', async () => {
    const cluster = `loop-${randomBytes(3).toString('hex')}`;
    const other = `${cluster}-other`;
    const browser = await browseOnLoopback({ clusterName: cluster });
    const started = Date.now();
    const coordinator = await advertiseOnLoopback({ clusterName: cluster, role: 'coordinator', nodeId: 'coord', port: 7070, backend: 'wasm', freeMemoryBytes: 3_000_000_000 });
    await advertiseOnLoopback({ clusterName: cluster, role: 'peer', nodeId: 'peer-1', port: 7071, backend: 'cpu', freeMemoryBytes: 1024 });
    await advertiseOnLoopback({ clusterName: other, role: 'coordinator', nodeId: 'stranger', port: 7072, backend: 'cpu', freeMemoryBytes: 1 });

    const nodes = await browser.waitForNodes(2, WAIT_MS);
    expect(Date.now() - started).toBeLessThan(WAIT_MS);
    const byId = new Map(nodes.map((n) => [n.nodeId, n]));
    expect(byId.get('coord')).toMatchObject({
      clusterName: cluster,
      role: 'coordinator',
      protocolVersion: PROTOCOL_VERSION,
      backend: 'wasm',
      freeMemoryBytes: 3_000_000_000,
      port: 7070,
      address: LO,
      instanceName: coordinator.instanceName,
      host: coordinator.host,
    });
    expect(byId.get('peer-1')).toMatchObject({ role: 'peer', backend: 'cpu', freeMemoryBytes: 1024, port: 7071, address: LO });
    // The stranger's announcement arrived too (same socket), but is ignored.
    await expect.poll(() => browser.otherClusters, { timeout: WAIT_MS }).toContain(other);
    expect(browser.nodes.map((n) => n.nodeId).sort()).toEqual(['coord', 'peer-1']);
  });

  it('filters by role', async () => {
    const cluster = `role-${randomBytes(3).toString('hex')}`;
    const peers = await browseOnLoopback({ clusterName: cluster, role: 'peer' });
    await advertiseOnLoopback({ clusterName: cluster, role: 'coordinator', nodeId: 'c', port: 7000, backend: 'cpu', freeMemoryBytes: 0 });
    await advertiseOnLoopback({ clusterName: cluster, role: 'peer', nodeId: 'p', port: 7001, backend: 'cpu', freeMemoryBytes: 0 });
    const [peer] = await peers.waitForNodes(1, WAIT_MS);
    expect(peer?.nodeId).toBe('p');
    // Give the coordinator's announcement time to arrive and be rejected.
    await new Promise((r) => setTimeout(r, 200));
    expect(peers.nodes.map((n) => n.nodeId)).toEqual(['p']);
  });

  it('reports a node that stops as "down" (goodbye packet)', async () => {
    const cluster = `bye-${randomBytes(3).toString('hex')}`;
    const browser = await browseOnLoopback({ clusterName: cluster });
    const up = nextEvent(browser, 'up', (n) => n.nodeId === 'leaver');
    const leaver = await advertise({ clusterName: cluster, role: 'peer', nodeId: 'leaver', port: 7100, backend: 'cpu', freeMemoryBytes: 0, interface: LO });
    await up;
    const down = nextEvent(browser, 'down', (n) => n.nodeId === 'leaver');
    await leaver.stop();
    expect((await down).address).toBe(LO);
    expect(browser.nodes).toEqual([]);
  });

  it('ignores another protocol version, with a warning', async () => {
    const cluster = `ver-${randomBytes(3).toString('hex')}`;
    const { logger, lines } = capturingLogger();
    const browser = await browse({ clusterName: cluster, interface: LO, logger });
    cleanups.push(() => browser.stop());
    // A node from the future, published with bonjour-service directly.
    const raw = new Bonjour(mdnsSocketOptions(LOOPBACK_INTERFACE) as ConstructorParameters<typeof Bonjour>[0]);
    cleanups.push(() => new Promise<void>((resolve) => raw.destroy(() => resolve())));
    raw.publish({
      name: `${cluster}-future-${randomBytes(3).toString('hex')}`,
      type: 'ringpipe',
      port: 7200,
      probe: false,
      txt: { cluster, role: 'coordinator', node: 'future', proto: String(PROTOCOL_VERSION + 1), backend: 'cpu', freemem: '0' },
    });
    await expect
      .poll(() => lines.some((l) => String(l.msg).includes('another protocol version') && l.theirs === String(PROTOCOL_VERSION + 1)), { timeout: WAIT_MS })
      .toBe(true);
    expect(browser.nodes).toEqual([]);
  });

  it('discoverCoordinator finds the coordinator, or explains the timeout', async () => {
    const cluster = `find-${randomBytes(3).toString('hex')}`;
    const coordinator = await advertiseOnLoopback({ clusterName: cluster, role: 'coordinator', nodeId: 'boss', port: 7300, backend: 'cpu', freeMemoryBytes: 0 });
    const found = await discoverCoordinator({ clusterName: cluster, interface: LO, timeoutMs: WAIT_MS });
    expect(found).toMatchObject({ nodeId: 'boss', address: LO, port: 7300, instanceName: coordinator.instanceName });

    const started = Date.now();
    const missing = discoverCoordinator({ clusterName: `${cluster}-nobody`, interface: LO, timeoutMs: 300 });
    await expect(missing).rejects.toThrowError(DiscoveryTimeoutError);
    await expect(missing).rejects.toThrowError(/Found 0 of 1 coordinator of cluster ".*-nobody" on mDNS \(interface lo \(127\.0\.0\.1\)\) within 300 ms\. Saw ringpipe nodes of other clusters only: find-.*--coordinator host:port/);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('rejects unusable options before touching the network', async () => {
    const base = { clusterName: 'ok', role: 'peer' as const, nodeId: 'n', port: 7000, backend: 'cpu', freeMemoryBytes: 0, interface: LO };
    await expect(advertise({ ...base, clusterName: 'has space' })).rejects.toThrowError(/cluster name "has space" must be 1–63 characters/);
    await expect(advertise({ ...base, port: 0 })).rejects.toThrowError(/port 0 must be an integer from 1 to 65535/);
    await expect(advertise({ ...base, freeMemoryBytes: Number.NaN })).rejects.toThrowError(/free memory NaN/);
    await expect(advertise({ ...base, interface: 'no-such-if0' })).rejects.toThrowError(/--interface no-such-if0: no such interface/);
    await expect(browse({ clusterName: '', interface: LO })).rejects.toThrowError(/cluster name ""/);
  });
});
