import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createLan, JsonLineReader, lanAvailableForTests, nodeWithTsx, type Lan, type LanHost } from '../scripts/lan/index.js';

// A coordinator and three peers, each in its own network namespace on an emulated LAN: real
// multicast across a bridge, and nothing on the machine's own interfaces.
const FIXTURE = fileURLToPath(new URL('./fixtures/discovery-node.ts', import.meta.url));
const lanOk = await lanAvailableForTests('emulated-LAN discovery tests');
/** Starting Node + tsx on a busy 2-core machine can take seconds; discovery itself is timed inside the process. */
const STARTUP_MS = 30_000;
const DISCOVERY_BUDGET_MS = 2_000;

const lans: Lan[] = [];
const children: JsonLineReader[] = [];
afterEach(async () => {
  await Promise.all(lans.splice(0).map((lan) => lan.destroy()));
  children.length = 0;
});

function startNode(host: LanHost, args: string[], env: Record<string, string> = {}): JsonLineReader {
  const [node, nodeArgs] = nodeWithTsx(FIXTURE, args);
  const child = host.exec(node, nodeArgs, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Clear discovery settings the test runner's environment might carry.
    env: { ...process.env, RINGPIPE_COORDINATOR: '', RINGPIPE_MDNS: '', RINGPIPE_LOG_LEVEL: 'warn', RINGPIPE_LOG_FORMAT: 'json', ...env },
  });
  const reader = new JsonLineReader(child, `${args.join(' ')} on ${host.name}`);
  children.push(reader);
  return reader;
}

const anyOf = (...events: string[]) => (line: Record<string, unknown>) => events.includes(String(line.event));

describe.skipIf(!lanOk)('discovery across an emulated LAN', () => {
  it('a coordinator and three peers in four namespaces find each other with no addresses given', async () => {
    const lan = await createLan({ hosts: 4 });
    lans.push(lan);
    const [h0, h1, h2, h3] = lan.hosts as [LanHost, LanHost, LanHost, LanHost];
    const cluster = `lan-${randomBytes(3).toString('hex')}`;

    const coordinator = startNode(h0, ['--role', 'coordinator', '--cluster', cluster, '--node-id', 'coord']);
    const listening = await coordinator.waitFor(anyOf('listening', 'error'), STARTUP_MS, 'coordinator start');
    expect(listening.event).toBe('listening');
    expect(await coordinator.waitFor(anyOf('advertised', 'error'), STARTUP_MS, 'coordinator advertisement')).toMatchObject({ event: 'advertised' });

    // Peer 3 picks its interface by name, the others use every interface.
    const peerHosts = [h1, h2, h3];
    const peers = peerHosts.map((host, i) =>
      startNode(host, ['--role', 'peer', '--cluster', cluster, '--node-id', `peer-${i + 1}`, '--timeout-ms', String(DISCOVERY_BUDGET_MS), ...(i === 2 ? ['--interface', 'eth0'] : [])]),
    );

    for (const [i, peer] of peers.entries()) {
      const found = await peer.waitFor(anyOf('coordinator', 'error'), STARTUP_MS, 'the coordinator');
      expect(found, `peer-${i + 1}`).toMatchObject({ event: 'coordinator', host: h0.address, port: listening.port, source: 'mdns' });
      expect(found.elapsedMs as number).toBeLessThan(DISCOVERY_BUDGET_MS);
      expect(await peer.waitFor(anyOf('connected', 'error'), STARTUP_MS, 'the connection')).toMatchObject({ event: 'connected', localAddress: peerHosts[i]?.address });
    }

    // The coordinator sees every peer on mDNS, at the address of the peer's own host, within the budget.
    for (const [i, host] of peerHosts.entries()) {
      const nodeId = `peer-${i + 1}`;
      const advertised = await peers[i]!.waitFor(anyOf('advertised'), STARTUP_MS, 'its advertisement');
      const up = await coordinator.waitFor((l) => l.event === 'peer-up' && l.nodeId === nodeId, DISCOVERY_BUDGET_MS, `${nodeId} on mDNS`);
      expect(up).toMatchObject({ address: host.address, clusterName: cluster, role: 'peer', backend: 'cpu' });
      expect((up.at as number) - (advertised.at as number)).toBeLessThan(DISCOVERY_BUDGET_MS);
      expect(await coordinator.waitFor((l) => l.event === 'hello' && l.nodeId === nodeId, DISCOVERY_BUDGET_MS, `${nodeId}'s hello`)).toMatchObject({
        remoteAddress: host.address,
      });
    }

    // Live updates: a peer that shuts down says goodbye, and the coordinator sees it leave.
    peers[0]!.child.kill('SIGTERM');
    expect(await peers[0]!.waitFor(anyOf('stopped'), STARTUP_MS, 'shutdown')).toMatchObject({ event: 'stopped' });
    expect(await coordinator.waitFor((l) => l.event === 'peer-down', DISCOVERY_BUDGET_MS, 'peer-1 leaving')).toMatchObject({ nodeId: 'peer-1', address: h1.address });
  });

  it('without multicast, peers reach the coordinator through --coordinator or RINGPIPE_COORDINATOR', async () => {
    // No 224.0.0.0/4 route: mDNS cannot work on this LAN, as on networks that block multicast.
    const lan = await createLan({ hosts: 4, multicast: false });
    lans.push(lan);
    const [h0, h1, h2, h3] = lan.hosts as [LanHost, LanHost, LanHost, LanHost];
    const cluster = `nomc-${randomBytes(3).toString('hex')}`;

    // The coordinator still tries to advertise: that must neither crash nor reach anyone.
    const coordinator = startNode(h0, ['--role', 'coordinator', '--cluster', cluster, '--node-id', 'coord']);
    const listening = await coordinator.waitFor(anyOf('listening', 'error'), STARTUP_MS, 'coordinator start');
    expect(listening.event).toBe('listening');
    const address = `${h0.address}:${listening.port}`;

    const setups: { host: LanHost; args: string[]; env: Record<string, string>; source: string }[] = [
      { host: h1, args: ['--coordinator', address, '--no-mdns'], env: {}, source: '--coordinator' },
      { host: h2, args: [], env: { RINGPIPE_COORDINATOR: address }, source: 'RINGPIPE_COORDINATOR' },
      { host: h3, args: [], env: { RINGPIPE_COORDINATOR: address, RINGPIPE_MDNS: '0' }, source: 'RINGPIPE_COORDINATOR' },
    ];
    const peers = setups.map((p, i) => ({ ...p, nodeId: `peer-${i + 1}`, reader: startNode(p.host, ['--role', 'peer', '--cluster', cluster, '--node-id', `peer-${i + 1}`, ...p.args], p.env) }));
    // Control: a peer left to mDNS finds nothing here, and says what to do instead. It names its
    // interface, so its queries do leave the host: the switch is what drops them.
    const control = startNode(h3, ['--role', 'peer', '--cluster', cluster, '--node-id', 'control', '--timeout-ms', '1500', '--interface', 'eth0']);

    for (const peer of peers) {
      const found = await peer.reader.waitFor(anyOf('coordinator', 'error'), STARTUP_MS, 'the coordinator');
      expect(found, peer.nodeId).toMatchObject({ event: 'coordinator', host: h0.address, port: listening.port, source: peer.source });
      const hello = await coordinator.waitFor((l) => l.event === 'hello' && l.nodeId === peer.nodeId, STARTUP_MS, `${peer.nodeId}'s hello`);
      expect(hello.remoteAddress).toBe(peer.host.address);
    }
    const failure = await control.waitFor(anyOf('coordinator', 'error'), STARTUP_MS, 'the control peer');
    expect(failure).toMatchObject({ event: 'error', name: 'DiscoveryTimeoutError' });
    expect(failure.message).toMatch(/Found 0 of 1 coordinator .* --coordinator host:port \(or RINGPIPE_COORDINATOR\)/);
    expect(coordinator.lines.filter((l) => l.event === 'peer-up')).toEqual([]);
  });
});
