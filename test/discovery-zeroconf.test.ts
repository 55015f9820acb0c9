import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../shared/discovery/index.js';
import {
  createLan,
  JsonLineReader,
  lanAvailableForTests,
  nodeWithTsx,
  reportMissingPrerequisite,
  type Lan,
  type LanHost,
} from '../scripts/lan/index.js';

// Our advertisement must be ordinary DNS-SD: python-zeroconf (Debian python3-zeroconf), a
// standard browser, has to RESOLVE it (name → SRV, TXT and an A record), not merely list it.
const NODE_FIXTURE = fileURLToPath(new URL('./fixtures/discovery-node.ts', import.meta.url));
const RESOLVER = fileURLToPath(new URL('./fixtures/discovery-zeroconf-resolve.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
const STARTUP_MS = 30_000;

function zeroconfAvailable(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import zeroconf'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return reportMissingPrerequisite('python-zeroconf resolution tests', `${PYTHON} cannot import zeroconf (install it: apt-get install -y python3-zeroconf)`);
  }
}

const ready = (await lanAvailableForTests('python-zeroconf resolution tests')) && zeroconfAvailable();

const lans: Lan[] = [];
afterEach(async () => {
  await Promise.all(lans.splice(0).map((lan) => lan.destroy()));
});

async function advertiseAndResolve(advertiser: LanHost, resolver: LanHost) {
  const cluster = `zc-${randomBytes(3).toString('hex')}`;
  const [node, args] = nodeWithTsx(NODE_FIXTURE, ['--role', 'coordinator', '--cluster', cluster, '--node-id', 'boss', '--backend', 'wasm']);
  const env = { ...process.env, RINGPIPE_COORDINATOR: '', RINGPIPE_MDNS: '', RINGPIPE_LOG_LEVEL: 'warn', RINGPIPE_LOG_FORMAT: 'json' };
  const coordinator = new JsonLineReader(advertiser.exec(node, args, { stdio: ['ignore', 'pipe', 'pipe'], env }), `coordinator on ${advertiser.name}`);
  const listening = await coordinator.waitFor((l) => l.event === 'listening' || l.event === 'error', STARTUP_MS, 'start');
  const advertised = await coordinator.waitFor((l) => l.event === 'advertised' || l.event === 'error', STARTUP_MS, 'advertisement');
  expect(advertised.event).toBe('advertised');

  const browser = new JsonLineReader(resolver.exec(PYTHON, [RESOLVER, '--wait', '8', '--expect', '1'], { stdio: ['ignore', 'pipe', 'pipe'] }), `python-zeroconf on ${resolver.name}`);
  const resolved = await browser.waitFor((l) => typeof l.name === 'string', STARTUP_MS, 'a resolved service');
  return { resolved, port: listening.port, cluster, instance: String(advertised.instance) };
}

describe.skipIf(!ready)('a standard DNS-SD browser (python-zeroconf) resolves our advertisement', () => {
  it('from another host of the LAN: name, port, TXT fields and the host address', async () => {
    const lan = await createLan({ hosts: 2 });
    lans.push(lan);
    const [h0, h1] = lan.hosts as [LanHost, LanHost];
    const { resolved, port, cluster, instance } = await advertiseAndResolve(h0, h1);
    expect(resolved).toMatchObject({
      name: `${instance}._ringpipe._tcp.local.`,
      port,
      addresses: [h0.address],
      properties: { cluster, role: 'coordinator', node: 'boss', proto: String(PROTOCOL_VERSION), backend: 'wasm' },
    });
    expect(String(resolved.server)).toMatch(/-[0-9a-f]{8}\.local\.$/);
    expect(Number((resolved.properties as Record<string, string>).freemem)).toBeGreaterThan(0);
  });

  it('inside a namespace with only loopback, where bonjour-service alone publishes no address', async () => {
    const lan = await createLan({ hosts: 1, loopbackOnly: true });
    lans.push(lan);
    const [h0] = lan.hosts as [LanHost];
    const { resolved, port } = await advertiseAndResolve(h0, h0);
    expect(resolved).toMatchObject({ port, addresses: ['127.0.0.1'] });
  });
});
