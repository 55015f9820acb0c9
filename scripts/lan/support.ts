import { randomBytes } from 'node:crypto';
import { deleteNamespaceSync } from './namespaces.js';
import { run } from './run-command.js';

export type LanSupport = { ok: true } | { ok: false; reason: string };

let cached: Promise<LanSupport> | undefined;

/**
 * Checks, once per process, that this machine can build emulated LANs: root, iproute2,
 * network namespaces, bridges, veth pairs and the tbf qdisc. Tests skip, loudly, when it cannot.
 */
export function checkLanSupport(): Promise<LanSupport> {
  cached ??= probe();
  return cached;
}

async function probe(): Promise<LanSupport> {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the emulated LAN needs root (ip netns add); run the tests as root' };
  const ns = `rp-${process.pid}-${randomBytes(2).toString('hex')}-probe`;
  const step = async (what: string, command: string, args: string[]) => {
    try {
      await run(command, args);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`);
    }
  };
  try {
    await step('network namespaces', 'ip', ['netns', 'add', ns]);
    await step('bridges', 'ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    await step('veth pairs', 'ip', ['-n', ns, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1']);
    await step('tc tbf', 'tc', ['-n', ns, 'qdisc', 'add', 'dev', 'a0', 'root', 'tbf', 'rate', '10mbit', 'burst', '65536', 'latency', '50ms']);
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `this machine cannot build an emulated LAN (${(err as Error).message})` };
  } finally {
    deleteNamespaceSync(ns);
  }
}

/** Set to 1 where the emulated LAN must work (CI): a missing prerequisite then fails instead of skipping. */
export const STRICT_PREREQS_ENV = 'RINGPIPE_STRICT_PREREQS';

/**
 * For test files: true when the LAN can be built. Otherwise prints a loud banner and returns
 * false (the caller skips), or throws when RINGPIPE_STRICT_PREREQS=1.
 */
export async function lanAvailableForTests(what: string): Promise<boolean> {
  const support = await checkLanSupport();
  if (support.ok) return true;
  return reportMissingPrerequisite(what, support.reason);
}

/** Skips loudly, or fails under RINGPIPE_STRICT_PREREQS=1. */
export function reportMissingPrerequisite(what: string, reason: string): false {
  const message = `SKIPPING ${what}: ${reason}`;
  if (process.env[STRICT_PREREQS_ENV] === '1') throw new Error(`${message} (and ${STRICT_PREREQS_ENV}=1 forbids skipping)`);
  process.stderr.write(`\n${'!'.repeat(message.length + 8)}\n!!! ${message} !!!\n${'!'.repeat(message.length + 8)}\n\n`);
  return false;
}
