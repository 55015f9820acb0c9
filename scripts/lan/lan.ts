import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { deleteNamespacesSync, trackNamespaces, untrack } from './cleanup.js';
import { addNamespace } from './namespaces.js';
import { hostAddress, lanNames, LAN_PREFIX_LENGTH, MAX_HOSTS } from './names.js';
import { run } from './run-command.js';

export interface LanOptions {
  /** Number of hosts (1–250), each its own network namespace. */
  hosts: number;
  /** Egress cap per host in Mbit/s (`tc … tbf`; this kernel has no netem). Default: uncapped. */
  rateMbit?: number;
  /**
   * `false` emulates a network that blocks multicast: the switch floods no multicast frames
   * (bridge ports with `mcast_flood off`), so mDNS is sent but never arrives. Default: true.
   */
  multicast?: boolean;
  /**
   * Hosts get only `lo` (multicast routed on it) and no link to each other: the "namespace
   * with only loopback" case. Each host is then a separate machine with no network.
   */
  loopbackOnly?: boolean;
  /** Survive this process (for `cli.ts up`); remove with `cli.ts down`. */
  persistent?: boolean;
}

export interface LanHost {
  index: number;
  /** Network namespace name (`ip netns exec <name> …`). */
  name: string;
  /** IPv4 address on eth0 (127.0.0.1 for loopback-only hosts). */
  address: string;
  /** Interface facing the LAN (`eth0`, or `lo` for loopback-only hosts). */
  interfaceName: string;
  /** Starts a command inside this host. The process is killed when the LAN is destroyed. */
  exec(command: string, args?: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Runs a short command inside this host and returns its stdout (bounded by a timeout). */
  run(command: string, args?: readonly string[]): Promise<string>;
}

export interface Lan {
  /** `<owner>-<random>`, as `cli.ts down` takes it. */
  id: string;
  hosts: LanHost[];
  /** The namespace holding the bridge (undefined for loopback-only LANs). */
  switchNamespace: string | undefined;
  rateMbit: number | undefined;
  /** Kills every process inside the LAN and deletes all its namespaces. Idempotent. */
  destroy(): Promise<void>;
}

const BRIDGE = 'br0';
const HOST_INTERFACE = 'eth0';

/**
 * A token bucket large enough to pass GSO super-packets and to keep TCP at the cap (≈ 4 ms of
 * traffic, at least 64 KiB), with at most 50 ms of queue.
 */
export function tbfArguments(rateMbit: number): string[] {
  const bytesPerSecond = (rateMbit * 1e6) / 8;
  const burstBytes = Math.max(64 * 1024, Math.ceil(bytesPerSecond * 0.004));
  return ['rate', `${rateMbit}mbit`, 'burst', String(burstBytes), 'latency', '50ms'];
}

function validate(options: LanOptions): void {
  if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > MAX_HOSTS) {
    throw new Error(`hosts must be an integer from 1 to ${MAX_HOSTS}, got ${options.hosts}`);
  }
  if (options.rateMbit !== undefined && !(Number.isFinite(options.rateMbit) && options.rateMbit > 0)) {
    throw new Error(`rateMbit must be a positive number, got ${options.rateMbit}`);
  }
  if (options.loopbackOnly && options.rateMbit !== undefined) throw new Error('rateMbit needs a link: it cannot be combined with loopbackOnly');
  if (options.loopbackOnly && options.multicast === false) throw new Error('multicast: false needs a switch: it cannot be combined with loopbackOnly');
}

async function buildSwitch(ns: string): Promise<void> {
  await addNamespace(ns);
  // Snooping off: the bridge floods all multicast, like the unmanaged switch of a home LAN.
  await run('ip', ['-n', ns, 'link', 'add', BRIDGE, 'type', 'bridge', 'mcast_snooping', '0']);
  await run('ip', ['-n', ns, 'link', 'set', BRIDGE, 'up']);
}

async function buildLinkedHost(ns: string, switchNs: string, index: number, options: LanOptions): Promise<void> {
  const port = `p${index}`;
  await addNamespace(ns);
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  // Both veth ends are created directly in our namespaces: the host's own namespace never sees them.
  await run('ip', ['-n', switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', HOST_INTERFACE, 'netns', ns]);
  await run('ip', ['-n', switchNs, 'link', 'set', port, 'master', BRIDGE, 'up']);
  if (options.multicast === false) await run('ip', ['-n', switchNs, 'link', 'set', port, 'type', 'bridge_slave', 'mcast_flood', 'off']);
  await run('ip', ['-n', ns, 'addr', 'add', `${hostAddress(index)}/${LAN_PREFIX_LENGTH}`, 'dev', HOST_INTERFACE]);
  await run('ip', ['-n', ns, 'link', 'set', HOST_INTERFACE, 'up']);
  // Without this route (there is no default route), multicast has nowhere to go and mDNS fails silently.
  await run('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', HOST_INTERFACE]);
  if (options.rateMbit !== undefined) {
    await run('tc', ['-n', ns, 'qdisc', 'add', 'dev', HOST_INTERFACE, 'root', 'tbf', ...tbfArguments(options.rateMbit)]);
  }
}

async function buildLoopbackHost(ns: string, options: LanOptions): Promise<void> {
  await addNamespace(ns);
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'multicast', 'on']);
  await run('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'lo']);
}

/**
 * Builds an emulated LAN: one namespace per host, joined by a bridge that lives in its own
 * namespace, so nothing touches the machine's real interfaces or routes. Needs root.
 */
export async function createLan(options: LanOptions): Promise<Lan> {
  validate(options);
  const names = lanNames(options.persistent ?? false);
  const hostNamespaces = Array.from({ length: options.hosts }, (_, i) => names.host(i));
  const switchNamespace = options.loopbackOnly ? undefined : names.switch;
  // Hosts first, then the switch: the order cleanup deletes them in.
  const allNamespaces = switchNamespace ? [...hostNamespaces, switchNamespace] : hostNamespaces;
  if (!options.persistent) trackNamespaces(names.id, allNamespaces);

  const children = new Set<ChildProcess>();
  let destroyed: Promise<void> | undefined;
  const destroy = () => {
    destroyed ??= (async () => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const problems = deleteNamespacesSync(allNamespaces);
      untrack(names.id);
      if (problems.length > 0) throw new Error(`LAN ${names.id} cleanup incomplete: ${problems.join('; ')}`);
    })();
    return destroyed;
  };

  try {
    if (switchNamespace) {
      await buildSwitch(switchNamespace);
      await Promise.all(hostNamespaces.map((ns, i) => buildLinkedHost(ns, switchNamespace, i, options)));
    } else {
      await Promise.all(hostNamespaces.map((ns) => buildLoopbackHost(ns, options)));
    }
  } catch (err) {
    await destroy().catch(() => undefined);
    throw new Error(`Could not build the emulated LAN: ${(err as Error).message}`, { cause: err });
  }

  const hosts = hostNamespaces.map((ns, index): LanHost => ({
    index,
    name: ns,
    address: options.loopbackOnly ? '127.0.0.1' : hostAddress(index),
    interfaceName: options.loopbackOnly ? 'lo' : HOST_INTERFACE,
    exec(command, args = [], spawnOptions = {}) {
      // `ip netns exec` execs the command in place, so the child's pid is the command's pid.
      const child = spawn('ip', ['netns', 'exec', ns, command, ...args], spawnOptions);
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    run: (command, args = []) => run('ip', ['netns', 'exec', ns, command, ...args]),
  }));
  return { id: names.id, hosts, switchNamespace, rateMbit: options.rateMbit, destroy };
}
