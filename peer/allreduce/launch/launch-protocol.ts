/**
 * The few lines a launcher and its rank processes exchange before the ring exists (read by
 * peer/launch/launched-child.ts on the launcher side): JSON objects,
 * one per line, on the child's stdout (child → launcher, tagged `ringpipe`) and stdin (launcher →
 * child). Pipes rather than IPC, so the same launcher works through `ip netns exec` on the emulated LAN.
 */
export const RANK_ENV = 'RINGPIPE_RANK';
export const WORLD_SIZE_ENV = 'RINGPIPE_WORLD_SIZE';
export const RING_EPOCH_ENV = 'RINGPIPE_RING_EPOCH';
export const RING_HOST_ENV = 'RINGPIPE_RING_HOST';

/** Child → launcher. `report` lines carry anything the program wants to hand back (results, progress). */
export type ChildLine =
  | { ringpipe: 'listening'; rank: number; host: string; port: number }
  | { ringpipe: 'report'; rank: number; kind: string; data: unknown }
  | { ringpipe: 'failed'; rank: number; message: string };

/** Launcher → child: where the next rank listens (absent for a ring of one). */
export interface RingAssignment {
  next?: { host: string; port: number };
}
