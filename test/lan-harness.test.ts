import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createLan, JsonLineReader, lanAvailableForTests, measureThroughput, nodeWithTsx, tbfArguments, type Lan } from '../scripts/lan/index.js';

const CLI = fileURLToPath(new URL('../scripts/lan/cli.ts', import.meta.url));
const lanOk = await lanAvailableForTests('emulated-LAN harness tests');
const STARTUP_MS = 30_000;

const netnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 });
/** Interface names in the machine's own namespace. */
const rootLinks = () =>
  execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8', timeout: 10_000 })
    .split('\n')
    .map((line) => line.split(':')[1]?.trim())
    .filter(Boolean)
    .sort();

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const lans: Lan[] = [];
afterEach(async () => {
  await Promise.all(lans.splice(0).map((lan) => lan.destroy()));
});

describe('tbfArguments', () => {
  it('sizes the bucket for GSO packets at low rates and for 4 ms of traffic at high rates', () => {
    expect(tbfArguments(10)).toEqual(['rate', '10mbit', 'burst', '65536', 'latency', '50ms']);
    expect(tbfArguments(1000)).toEqual(['rate', '1000mbit', 'burst', '500000', 'latency', '50ms']);
  });
});

describe.skipIf(!lanOk)('emulated LAN harness', () => {
  it('gives each host its own namespace, address and multicast route, without touching the host network', async () => {
    const linksBefore = rootLinks();
    const lan = await createLan({ hosts: 3 });
    lans.push(lan);
    expect(lan.hosts.map((h) => h.address)).toEqual(['198.18.0.1', '198.18.0.2', '198.18.0.3']);
    for (const host of lan.hosts) {
      expect(await host.run('ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0'])).toContain(`${host.address}/24`);
      expect(await host.run('ip', ['route', 'show'])).toMatch(/^224\.0\.0\.0\/4 dev eth0/m);
    }
    expect(netnsList()).toContain(lan.switchNamespace);
    // The bridge and every veth end live in our namespaces: the machine's own link list is unchanged.
    expect(rootLinks()).toEqual(linksBefore);
  });

  it('builds loopback-only hosts (only lo, multicast routed on it)', async () => {
    const lan = await createLan({ hosts: 1, loopbackOnly: true });
    lans.push(lan);
    const [host] = lan.hosts;
    expect(host?.address).toBe('127.0.0.1');
    const links = await host!.run('ip', ['-o', 'link', 'show']);
    expect(links.trim().split('\n')).toHaveLength(1);
    expect(links).toMatch(/lo: <LOOPBACK,MULTICAST,UP/);
    expect(await host!.run('ip', ['route', 'show'])).toMatch(/^224\.0\.0\.0\/4 dev lo/m);
  });

  it('destroy() kills processes inside the LAN and leaves no namespace behind', async () => {
    const lan = await createLan({ hosts: 2 });
    const sleeper = lan.hosts[1]!.exec('sleep', ['60'], { stdio: 'ignore' });
    const exited = once(sleeper, 'exit');
    await lan.destroy();
    await withTimeout(exited, 5_000, 'the process inside the LAN');
    const names = [...lan.hosts.map((h) => h.name), lan.switchNamespace];
    const remaining = netnsList();
    for (const name of names) expect(remaining).not.toContain(name);
    await lan.destroy(); // idempotent
  });

  it('an owner stopped by SIGTERM removes its LAN; one killed by SIGKILL is removed by cleanup --all-stale', async () => {
    const startHolder = async () => {
      const [node, args] = nodeWithTsx(CLI, ['hold', '--hosts', '2', '--json']);
      const child = spawn(node, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const reader = new JsonLineReader(child, 'lan cli hold');
      const info = await reader.waitFor((l) => typeof l.id === 'string', STARTUP_MS, 'the LAN description');
      const names = [...(info.hosts as { name: string }[]).map((h) => h.name), String(info.switchNamespace)];
      return { child, names };
    };

    const polite = await startHolder();
    expect(netnsList()).toContain(polite.names[0]);
    const politeExit = once(polite.child, 'exit');
    polite.child.kill('SIGTERM');
    const [, signal] = await withTimeout(politeExit, 10_000, 'the SIGTERMed owner');
    expect(signal).toBe('SIGTERM'); // the handler cleaned up, then let the signal end the process
    for (const name of polite.names) expect(netnsList()).not.toContain(name);

    const crashed = await startHolder();
    const crashExit = once(crashed.child, 'exit');
    crashed.child.kill('SIGKILL');
    await withTimeout(crashExit, 10_000, 'the SIGKILLed owner');
    for (const name of crashed.names) expect(netnsList()).toContain(name);
    const [node, args] = nodeWithTsx(CLI, ['cleanup', '--all-stale']);
    const report = execFileSync(node, args, { encoding: 'utf8', timeout: STARTUP_MS });
    for (const name of crashed.names) expect(report).toContain(name);
    for (const name of crashed.names) expect(netnsList()).not.toContain(name);
  });

  it('caps each host’s egress with tbf: plain TCP between two hosts runs within 15% of the cap', async () => {
    const rateMbit = 50;
    const lan = await createLan({ hosts: 2, rateMbit });
    lans.push(lan);
    expect(await lan.hosts[0]!.run('tc', ['qdisc', 'show', 'dev', 'eth0'])).toMatch(/tbf .*rate 50Mbit/);
    const result = await measureThroughput(lan, { from: 0, to: 1, seconds: 1 });
    expect(result.mbit).toBeGreaterThan(rateMbit * 0.85);
    expect(result.mbit).toBeLessThan(rateMbit * 1.15);
  });
});
