import { deleteNamespaceSync, isAlive, listHarnessNamespaces } from './namespaces.js';

/** Namespaces of the LANs this process owns and has not destroyed yet, by LAN id. */
const owned = new Map<string, string[]>();
let hooksInstalled = false;

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Deletes namespaces in order; returns the problems it could not fix. */
export function deleteNamespacesSync(names: readonly string[]): string[] {
  return names.map((name) => deleteNamespaceSync(name)).filter((p): p is string => p !== undefined);
}

function destroyAllOwnedSync(): void {
  for (const [id, names] of owned) {
    deleteNamespacesSync(names);
    owned.delete(id);
  }
}

/**
 * Guarantees cleanup: on normal exit and on SIGINT/SIGTERM/SIGHUP. A signal handler replaces
 * Node's default "exit", so after cleaning up we re-raise the signal when nobody else listens.
 */
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', destroyAllOwnedSync);
  for (const signal of SIGNALS) {
    const onSignal = () => {
      destroyAllOwnedSync();
      process.off(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Registers namespaces before they are created, so a half-built LAN is cleaned up too. */
export function trackNamespaces(lanId: string, names: string[]): void {
  installHooks();
  owned.set(lanId, names);
}

export function untrack(lanId: string): void {
  owned.delete(lanId);
}

export interface CleanupReport {
  removed: string[];
  problems: string[];
}

/**
 * Removes leftovers: namespaces whose owner process is gone (SIGKILLed test runners), and with
 * `includePersistent` also the LANs made by `cli.ts up`.
 */
export function cleanupStale({ includePersistent = false } = {}): CleanupReport {
  const stale = listHarnessNamespaces()
    .filter((ns) => (ns.ownerPid === undefined ? includePersistent : ns.ownerPid !== process.pid && !isAlive(ns.ownerPid)))
    // Hosts before switches: deleting a host ends its veth pair on the bridge too.
    .sort((a, b) => Number(a.name.endsWith('-sw')) - Number(b.name.endsWith('-sw')));
  const names = stale.map((ns) => ns.name);
  const problems = deleteNamespacesSync(names);
  return { removed: names, problems };
}
