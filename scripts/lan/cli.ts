/**
 * Emulated-LAN command line:
 *   tsx scripts/lan/cli.ts up   [--hosts N] [--rate MBIT] [--no-multicast] [--loopback-only] [--json]
 *   tsx scripts/lan/cli.ts hold [same options]   (LAN lives as long as this process)
 *   tsx scripts/lan/cli.ts down <lan-id> | --all
 *   tsx scripts/lan/cli.ts list
 *   tsx scripts/lan/cli.ts cleanup --all-stale [--include-kept]
 */
import { parseArgs } from 'node:util';
import { cleanupStale, deleteNamespacesSync } from './cleanup.js';
import { createLan } from './lan.js';
import { isAlive, listHarnessNamespaces } from './namespaces.js';
import { checkLanSupport } from './support.js';

const USAGE = `usage: tsx scripts/lan/cli.ts <command>
  up [--hosts N] [--rate MBIT] [--no-multicast] [--loopback-only] [--json]
                      build a LAN that stays up until 'down' (hosts 198.18.0.1, .2, …)
  hold [same options] build a LAN that lives until this command ends (Ctrl-C, SIGTERM)
  down <lan-id>       remove one LAN (ids are shown by 'up' and 'list')
  down --all          remove every harness namespace
  list                show harness namespaces and whether their owner is alive
  cleanup --all-stale remove namespaces left by processes that died
          [--include-kept] … and LANs made with 'up'`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function positiveNumber(flag: string, raw: string | undefined, fallback: number | undefined): number | undefined {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) fail(`${flag} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
}

async function up(args: string[], persistent: boolean): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      hosts: { type: 'string' },
      rate: { type: 'string' },
      'no-multicast': { type: 'boolean' },
      'loopback-only': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const support = await checkLanSupport();
  if (!support.ok) fail(support.reason);
  const rateMbit = positiveNumber('--rate', values.rate, undefined);
  const lan = await createLan({
    hosts: positiveNumber('--hosts', values.hosts, 2) ?? 2,
    ...(rateMbit !== undefined ? { rateMbit } : {}),
    multicast: !values['no-multicast'],
    loopbackOnly: values['loopback-only'] ?? false,
    persistent,
  });
  if (values.json) {
    const hosts = lan.hosts.map((h) => ({ name: h.name, address: h.address }));
    process.stdout.write(`${JSON.stringify({ id: lan.id, hosts, switchNamespace: lan.switchNamespace ?? null, pid: process.pid })}\n`);
  } else {
    process.stdout.write(`LAN ${lan.id} is up${rateMbit ? `, egress capped at ${rateMbit} Mbit/s per host` : ''}:\n`);
    for (const host of lan.hosts) process.stdout.write(`  ${host.name}  ${host.address}  (ip netns exec ${host.name} <command>)\n`);
    process.stdout.write(persistent ? `Remove it with: tsx scripts/lan/cli.ts down ${lan.id}\n` : 'Press Ctrl-C to remove it.\n');
  }
  // `hold`: stay alive; the harness's signal handlers remove the LAN on Ctrl-C or SIGTERM.
  if (!persistent) setInterval(() => undefined, 1 << 30);
}

function down(args: string[]): void {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { all: { type: 'boolean' } } });
  const lanId = positionals[0];
  if (!values.all && !lanId) fail('down needs a LAN id or --all');
  const targets = listHarnessNamespaces()
    .filter((ns) => values.all || ns.lanId === lanId)
    .sort((a, b) => Number(a.name.endsWith('-sw')) - Number(b.name.endsWith('-sw')));
  if (targets.length === 0) fail(values.all ? 'no harness namespaces exist' : `no LAN with id ${lanId} (see: tsx scripts/lan/cli.ts list)`);
  const problems = deleteNamespacesSync(targets.map((ns) => ns.name));
  process.stdout.write(`removed ${targets.length - problems.length} namespace(s)\n`);
  if (problems.length > 0) fail(problems.join('\n'));
}

function list(): void {
  const namespaces = listHarnessNamespaces();
  if (namespaces.length === 0) {
    process.stdout.write('no harness namespaces\n');
    return;
  }
  for (const ns of namespaces) {
    const owner = ns.ownerPid === undefined ? 'kept (cli up)' : isAlive(ns.ownerPid) ? `owner pid ${ns.ownerPid} alive` : `STALE (owner pid ${ns.ownerPid} gone)`;
    process.stdout.write(`${ns.lanId}  ${ns.name}  ${owner}\n`);
  }
}

function cleanup(args: string[]): void {
  const { values } = parseArgs({ args, options: { 'all-stale': { type: 'boolean' }, 'include-kept': { type: 'boolean' } } });
  if (!values['all-stale']) fail('cleanup needs --all-stale');
  const report = cleanupStale({ includePersistent: values['include-kept'] ?? false });
  process.stdout.write(report.removed.length > 0 ? `removed: ${report.removed.join(' ')}\n` : 'nothing stale\n');
  if (report.problems.length > 0) fail(report.problems.join('\n'));
}

const [command, ...rest] = process.argv.slice(2);
try {
  if (command === 'up') await up(rest, true);
  else if (command === 'hold') await up(rest, false);
  else if (command === 'down') down(rest);
  else if (command === 'list') list();
  else if (command === 'cleanup') cleanup(rest);
  else fail(command ? `unknown command ${command}` : 'missing command');
} catch (err) {
  fail((err as Error).message);
}
