import type { z } from 'zod';
import { DiscoveryConfigError } from './errors.js';

/** Checks one user-supplied value against a schema; the error names the value and the rule. */
export function validated<T>(what: string, schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new DiscoveryConfigError(`${what} ${JSON.stringify(value)} ${result.error.issues[0]?.message ?? 'is invalid'}`);
  return result.data;
}

export function validatePort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new DiscoveryConfigError(`port ${port} must be an integer from 1 to 65535`);
  return port;
}

export function validateFreeMemory(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new DiscoveryConfigError(`free memory ${bytes} must be a non-negative number of bytes`);
  return Math.min(Math.floor(bytes), Number.MAX_SAFE_INTEGER);
}
