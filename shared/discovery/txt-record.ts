import { z } from 'zod';
import { NODE_ROLES, type NodeRole } from './service-type.js';

/** What every ringpipe advertisement says about its node, carried in the DNS-SD TXT record. */
export interface NodeDescription {
  clusterName: string;
  role: NodeRole;
  nodeId: string;
  protocolVersion: number;
  /** Tensor backend the node trains with (`wasm`, `cpu`, `tensorflow`, …). */
  backend: string;
  freeMemoryBytes: number;
}

/**
 * TXT keys, short as DNS-SD recommends (≤ 9 characters) but still readable in avahi-browse.
 * Changing a key is a protocol change: bump PROTOCOL_VERSION.
 */
export const TXT_KEYS = {
  clusterName: 'cluster',
  role: 'role',
  nodeId: 'node',
  protocolVersion: 'proto',
  backend: 'backend',
  freeMemoryBytes: 'freemem',
} as const satisfies Record<keyof NodeDescription, string>;

// Names travel inside DNS labels and TXT strings: keep them to a safe, unambiguous alphabet.
export const clusterNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1–63 characters of letters, digits, ".", "_" or "-", starting with a letter or digit');
export const nodeIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, 'must be 1–64 characters of letters, digits, ".", "_", ":" or "-", starting with a letter or digit');
export const backendSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'must be 1–32 lower-case letters, digits, ".", "_" or "-"');

const decimal = (what: string) =>
  z.string().regex(/^\d{1,16}$/, `${what} must be a non-negative decimal integer`).transform(Number);

const txtSchema = z.object({
  [TXT_KEYS.clusterName]: clusterNameSchema,
  [TXT_KEYS.role]: z.enum(NODE_ROLES as [NodeRole, ...NodeRole[]]),
  [TXT_KEYS.nodeId]: nodeIdSchema,
  [TXT_KEYS.protocolVersion]: decimal('protocol version'),
  [TXT_KEYS.backend]: backendSchema,
  [TXT_KEYS.freeMemoryBytes]: decimal('free memory'),
});

export function encodeTxt(node: NodeDescription): Record<string, string> {
  return {
    [TXT_KEYS.clusterName]: node.clusterName,
    [TXT_KEYS.role]: node.role,
    [TXT_KEYS.nodeId]: node.nodeId,
    [TXT_KEYS.protocolVersion]: String(node.protocolVersion),
    [TXT_KEYS.backend]: node.backend,
    [TXT_KEYS.freeMemoryBytes]: String(node.freeMemoryBytes),
  };
}

export type TxtDecodeResult = { ok: true; node: NodeDescription } | { ok: false; problem: string };

/** Reads a TXT record as decoded by bonjour-service (string values); never throws. */
export function decodeTxt(txt: unknown): TxtDecodeResult {
  const parsed = txtSchema.safeParse(txt ?? {});
  if (!parsed.success) {
    const problem = parsed.error.issues.map((i) => `${i.path.join('.') || 'txt'}: ${i.message}`).join('; ');
    return { ok: false, problem };
  }
  const t = parsed.data;
  return {
    ok: true,
    node: {
      clusterName: t[TXT_KEYS.clusterName],
      role: t[TXT_KEYS.role],
      nodeId: t[TXT_KEYS.nodeId],
      protocolVersion: t[TXT_KEYS.protocolVersion],
      backend: t[TXT_KEYS.backend],
      freeMemoryBytes: t[TXT_KEYS.freeMemoryBytes],
    },
  };
}
