import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLan, JsonLineReader, lanAvailableForTests, nodeWithTsx, type Lan, type LanHost } from '../scripts/lan/index.js';

// The real `coordinator` and `peer` commands, each in its own network namespace of an emulated
// LAN, with a cluster secret: they find each other (mDNS on the namespaces' eth0 only, or an
// explicit address where the switch drops multicast) and form authenticated links. A node with
// the wrong secret is refused, and both sides say why. The test stops once the peers are admitted
// (the coordinator has sent them the job): training is other tests' business.
const ROOT = path.join(import.meta.dirname, '..');
const COORDINATOR = path.join(ROOT, 'scripts', 'coordinator.ts');
const PEER = path.join(ROOT, 'scripts', 'peer.ts');
const lanOk = await lanAvailableForTests('authenticated links across an emulated LAN');
/** Starting Node + tsx + the commands' imports on a busy 2-core machine can take many seconds. */
const STARTUP_MS = 60_000;
/** Issue #3: every peer finds the coordinator within 2 s of starting to browse. */
const DISCOVERY_BUDGET_MS = 2_000;
const PORT = 7070;

const lans: Lan[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(lans.splice(0).map((lan) => lan.destroy()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The runner's own RINGPIPE_* settings must not leak into the commands. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('RINGPIPE_')) env[key] = value;
  return { ...env, RINGPIPE_LOG_FORMAT: 'json', RINGPIPE_LOG_LEVEL: 'info', ...extra };
}

function start(host: LanHost, script: string, label: string, args: string[], env: Record<string, string>): JsonLineReader {
  const [node, nodeArgs] = nodeWithTsx(script, args);
  const child = host.exec(node, nodeArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv(env), cwd: ROOT });
  // pino logs JSON on stderr; stdout has the lines meant for people.
  return new JsonLineReader(child, `${label} on ${host.name}`, { jsonFrom: 'stderr' });
}

function startCoordinator(host: LanHost, cluster: string, secret: string, args: string[]): JsonLineReader {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'rp-transport-lan-'));
  dirs.push(runDir);
  return start(host, COORDINATOR, 'coordinator', ['--cluster', cluster, '--port', String(PORT), '--min-peers', '3', '--run-dir', runDir, '--no-dashboard', ...args], {
    RINGPIPE_SECRET: secret,
  });
}

const message = (text: string | RegExp) => (line: Record<string, unknown>) =>
  typeof text === 'string' ? line.msg === text : text.test(String(line.msg ?? ''));

/** Both ends of a peer's link to the coordinator are authenticated, and the coordinator admitted it. */
async function expectAdmitted(coordinator: JsonLineReader, peer: JsonLineReader, nodeId: string, peerHost: LanHost, coordinatorHost: LanHost): Promise<void> {
  const dialed = await peer.waitFor(message('link authenticated'), STARTUP_MS, `${nodeId}'s authenticated link`);
  expect(dialed.peer).toMatch(new RegExp(`\\(coordinator\\) at ${coordinatorHost.address.replaceAll('.', '\\.')}:${PORT}$`));
  const accepted = await coordinator.waitFor((l) => l.msg === 'link authenticated' && String(l.peer).startsWith(`${nodeId} (peer) at ${peerHost.address}:`), STARTUP_MS, `${nodeId} authenticated`);
  expect(accepted).toBeDefined();
  await coordinator.waitFor((l) => l.msg === 'peer joined; sending the job' && String(l.peer).startsWith(`${nodeId} at ${peerHost.address} `), STARTUP_MS, `${nodeId} admitted`);
}

describe.skipIf(!lanOk)('authenticated links across an emulated LAN (real coordinator and peer commands)', () => {
  it('three peers find the coordinator on mDNS within 2 s, with no addresses given, and are admitted', async () => {
    const lan = await createLan({ hosts: 4 });
    lans.push(lan);
    const [h0, ...peerHosts] = lan.hosts as [LanHost, LanHost, LanHost, LanHost];
    const cluster = `tl-${randomBytes(3).toString('hex')}`;
    const secret = randomBytes(32).toString('hex');

    // mDNS only on the namespace's own eth0: no real interface exists in there, and none is named.
    const coordinator = startCoordinator(h0, cluster, secret, ['--interface', 'eth0']);
    const advertised = await coordinator.waitFor(message('advertising on mDNS'), STARTUP_MS, 'the coordinator advertising');
    expect(advertised).toMatchObject({ interface: 'eth0', addresses: [h0.address], port: PORT });

    const peers = peerHosts.map((host, i) =>
      start(host, PEER, `peer-${i + 1}`, ['--cluster', cluster, '--node-id', `peer-${i + 1}`, '--interface', 'eth0', '--backend', 'cpu'], { RINGPIPE_SECRET: secret }),
    );
    for (const [i, peer] of peers.entries()) {
      const nodeId = `peer-${i + 1}`;
      const found = await peer.waitFor(message(/^found the coordinator on mDNS/), STARTUP_MS, `${nodeId} finding the coordinator`);
      expect(found, nodeId).toMatchObject({ address: h0.address, port: PORT });
      expect(found.elapsedMs as number, `${nodeId}: ms from starting to browse to the answer`).toBeLessThan(DISCOVERY_BUDGET_MS);
      expect(await peer.waitFor(message('connected to the coordinator'), STARTUP_MS, `${nodeId} connected`)).toMatchObject({ via: 'mdns' });
      await expectAdmitted(coordinator, peer, nodeId, peerHosts[i]!, h0);
    }
    expect(coordinator.lines.filter(message('refused a connection'))).toEqual([]);
  });

  it('where the switch drops multicast, --coordinator and RINGPIPE_COORDINATOR reach it; a wrong secret is refused, both sides saying why', async () => {
    const lan = await createLan({ hosts: 5, multicast: false });
    lans.push(lan);
    const [h0, h1, h2, h3, h4] = lan.hosts as [LanHost, LanHost, LanHost, LanHost, LanHost];
    const cluster = `tn-${randomBytes(3).toString('hex')}`;
    const secret = randomBytes(32).toString('hex');
    const address = `${h0.address}:${PORT}`;

    const coordinator = startCoordinator(h0, cluster, secret, ['--no-mdns']);
    await coordinator.waitFor(message('listening for links'), STARTUP_MS, 'the coordinator listening');

    const setups: { host: LanHost; nodeId: string; args: string[]; env: Record<string, string>; via: string }[] = [
      { host: h1, nodeId: 'peer-1', args: ['--coordinator', address, '--no-mdns'], env: {}, via: '--coordinator' },
      { host: h2, nodeId: 'peer-2', args: [], env: { RINGPIPE_COORDINATOR: address, RINGPIPE_MDNS: '0' }, via: 'RINGPIPE_COORDINATOR' },
      // mDNS left on (confined to eth0): the explicit address still wins.
      { host: h3, nodeId: 'peer-3', args: ['--interface', 'eth0'], env: { RINGPIPE_COORDINATOR: address }, via: 'RINGPIPE_COORDINATOR' },
    ];
    const peers = setups.map((s) => start(s.host, PEER, s.nodeId, ['--cluster', cluster, '--node-id', s.nodeId, '--backend', 'cpu', ...s.args], { RINGPIPE_SECRET: secret, ...s.env }));
    const intruder = start(h4, PEER, 'intruder', ['--cluster', cluster, '--node-id', 'intruder', '--coordinator', address, '--no-mdns'], {
      RINGPIPE_SECRET: randomBytes(32).toString('hex'),
    });

    for (const [i, s] of setups.entries()) {
      expect(await peers[i]!.waitFor(message('connected to the coordinator'), STARTUP_MS, `${s.nodeId} connected`)).toMatchObject({ via: s.via });
      await expectAdmitted(coordinator, peers[i]!, s.nodeId, s.host, h0);
    }

    // The intruder's side: the process stops and says what to do.
    expect(await intruder.waitForExit(STARTUP_MS)).toMatchObject({ code: 1 });
    expect(intruder.textLines.join('\n')).toContain(`refused by ${address}: wrong cluster secret — set RINGPIPE_SECRET to the coordinator's secret`);
    // The coordinator's side: the refusal, naming who and why; the intruder never joined.
    const refusal = await coordinator.waitFor(message('refused a connection'), STARTUP_MS, 'the refusal');
    expect(refusal.reason).toMatch(new RegExp(`^refused intruder \\(peer\\) at ${h4.address.replaceAll('.', '\\.')}:\\d+: wrong cluster secret`));
    const admitted = (l: Record<string, unknown>) => l.msg === 'link authenticated' || l.msg === 'peer joined; sending the job';
    expect(coordinator.lines.filter((l) => admitted(l) && String(l.peer).startsWith('intruder'))).toEqual([]);
  });
});
