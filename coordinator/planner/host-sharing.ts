/**
 * How many CPU cores each peer gets when several peers run on one host. A peer trains on one thread
 * (the wasm and cpu backends are single-threaded), so alone on an idle host it gets one core; peers
 * and other work then share the cores as Linux's scheduler does (fair sharing, modelled as a fluid).
 *
 * On Linux with autogroup (`/proc/sys/kernel/sched_autogroup_enabled` = 1), processes started from one
 * session (one terminal, or one launcher and its children) form one scheduling group, and groups,
 * not threads, share the cores fairly. Two peers started by one launcher on a busy host therefore
 * split one group's share, while peers started from two terminals each get a share of their own.
 */
export interface HostLoad {
  cores: number;
  /**
   * Other work competing for the cores, as always-busy single-thread competitors of equal weight
   * (threads, or scheduling groups under autogroup). 0 on an otherwise idle host.
   */
  competing: number;
  /** Peers on this host run in one scheduling group (autogroup and one launching session). */
  peersShareGroup: boolean;
  /**
   * Measured (this machine): per k = 1…n busy peers, the cores' worth of work each gets. Used
   * instead of the fluid model where given.
   */
  measuredSharePerPeer?: number[];
  /** Measured (this machine): per k busy peers, the variance ÷ mean of a pass's wall time, in ms (jitter.ts). */
  measuredJitterMs?: number[];
}

/** κ for `busyPeers` busy peers on `host`: measured, or 0 (an idle host runs passes in their mean time). */
export function hostJitterMs(host: HostLoad, busyPeers: number): number {
  const measured = host.measuredJitterMs;
  if (!measured || measured.length === 0) return 0;
  return measured[Math.min(Math.max(1, busyPeers), measured.length) - 1]!;
}

export const IDLE_HOST = (cores: number): HostLoad => ({ cores, competing: 0, peersShareGroup: false });

/**
 * Cores each of `busyPeers` peers gets on `host`: water-filling of the cores over the competitors
 * (each uses at most one core) and our peers (each at most one core; as one group when they share
 * one, the group weighing as much as one competitor).
 */
export function peerCoreShare(host: HostLoad, busyPeers: number): number {
  if (busyPeers <= 0) return 1;
  const measured = host.measuredSharePerPeer;
  if (measured && measured.length > 0) {
    if (busyPeers <= measured.length) return measured[busyPeers - 1]!;
    // More busy peers than measured: scale the last measurement as the fluid model scales.
    return (measured[measured.length - 1]! * fluidShare(host, busyPeers)) / fluidShare(host, measured.length);
  }
  return fluidShare(host, busyPeers);
}

function fluidShare(host: HostLoad, busyPeers: number): number {
  const { cores, competing } = host;
  if (host.peersShareGroup) {
    // Fair level λ per entity: min(k, λ) for our group + competing · min(1, λ) = cores.
    const level = fairLevel(cores, [{ weight: 1, cap: busyPeers }, { weight: competing, cap: 1 }]);
    return Math.min(busyPeers, level) / busyPeers;
  }
  const level = fairLevel(cores, [{ weight: busyPeers + competing, cap: 1 }]);
  return Math.min(1, level);
}

/**
 * The level λ at which entities, each taking min(cap, λ), use exactly `cores` (or every cap, if the
 * cores are more than all can use). Bisection: the used total grows monotonically with λ.
 */
function fairLevel(cores: number, entities: { weight: number; cap: number }[]): number {
  const used = (level: number) => entities.reduce((total, e) => total + e.weight * Math.min(e.cap, level), 0);
  const maxCap = Math.max(...entities.map((e) => e.cap));
  if (used(maxCap) <= cores) return maxCap;
  let low = 0;
  let high = maxCap;
  for (let i = 0; i < 60; i++) {
    const mid = (low + high) / 2;
    if (used(mid) < cores) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

/**
 * The competing load implied by the share of a core that one busy thread of ours got while measuring
 * (CPU time ÷ wall time): a fair share of `share` on `cores` cores means cores / share entities in all.
 * A share near 1 says only that the host was not saturated; the competitors are then taken from a
 * direct count of runnable threads, when the platform gives one, limited to what leaves us a core.
 */
export function competingFromShare(cores: number, share: number, runnableOthers?: number): number {
  if (share < 0.95) return Math.max(0, cores / Math.max(share, 1e-3) - 1);
  return Math.min(Math.max(0, cores - 1), Math.max(0, runnableOthers ?? 0));
}
