import { run, runSync } from './run-command.js';
import { NAMESPACE_PATTERN, parseNamespaceName, type ParsedNamespace } from './names.js';

/** Every harness namespace that currently exists (`ip netns list`, filtered to our names). */
export function listHarnessNamespaces(): ParsedNamespace[] {
  return runSync('ip', ['netns', 'list'])
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => NAMESPACE_PATTERN.test(name))
    .map((name) => parseNamespaceName(name))
    .filter((parsed): parsed is ParsedNamespace => parsed !== undefined);
}

/**
 * Kills every process inside a namespace, then deletes it. `ip netns del` alone only removes
 * the name: a namespace lives on while any process is in it, so processes go first.
 * Synchronous so it can run from an exit handler. Never throws: cleanup does its best.
 */
export function deleteNamespaceSync(name: string): string | undefined {
  if (!NAMESPACE_PATTERN.test(name)) return `refusing to delete ${name}: not a harness namespace`;
  try {
    const pids = runSync('ip', ['netns', 'pids', name]).split(/\s+/).filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  } catch {
    // Namespace already gone; deletion below reports what matters.
  }
  try {
    runSync('ip', ['netns', 'del', name]);
    return undefined;
  } catch (err) {
    const message = (err as Error).message;
    return /No such file|Cannot remove namespace file/.test(message) && !listHarnessNamespaces().some((n) => n.name === name)
      ? undefined
      : message;
  }
}

export async function addNamespace(name: string): Promise<void> {
  await run('ip', ['netns', 'add', name]);
}

/** True when the pid names a live process (EPERM still means it exists). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
