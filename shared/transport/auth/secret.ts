import { readFileSync } from 'node:fs';
import { TransportError } from '../errors.js';
import { isLoopbackHost } from './loopback.js';

/** Where the cluster secret can come from, in order: explicit value, explicit file, env var, env file. */
export interface SecretSource {
  /** The secret itself (e.g. from a CLI flag). */
  secret?: string | Uint8Array;
  /** A file holding the secret (surrounding whitespace is ignored). */
  secretFile?: string;
  /** Defaults to process.env; injectable for tests. */
  env?: NodeJS.ProcessEnv;
}

/** Just the secret fields of `source` (options objects that extend SecretSource carry many more), leaving out absent ones. */
export function secretSourceOf(source: SecretSource): SecretSource {
  const picked: SecretSource = {};
  if (source.secret !== undefined) picked.secret = source.secret;
  if (source.secretFile !== undefined) picked.secretFile = source.secretFile;
  if (source.env !== undefined) picked.env = source.env;
  return picked;
}

export const SECRET_ENV = 'RINGPIPE_SECRET';
export const SECRET_FILE_ENV = 'RINGPIPE_SECRET_FILE';
export const MIN_SECRET_BYTES = 16;

const HOW_TO = `set ${SECRET_ENV} (or ${SECRET_FILE_ENV}, the path of a file holding it) to the same value on every node, e.g. the output of \`openssl rand -hex 32\``;

/** Returns the secret bytes, or undefined when none is configured anywhere. */
export function loadSecret(source: SecretSource = {}): Uint8Array | undefined {
  const env = source.env ?? process.env;
  let secret: Uint8Array | undefined;
  let origin = '';
  if (source.secret !== undefined) {
    secret = typeof source.secret === 'string' ? Buffer.from(source.secret, 'utf8') : source.secret;
    origin = 'the secret option';
  } else if (source.secretFile !== undefined || env[SECRET_FILE_ENV]) {
    const file = source.secretFile ?? (env[SECRET_FILE_ENV] as string);
    secret = readSecretFile(file);
    origin = `secret file ${file}`;
  } else if (env[SECRET_ENV] !== undefined && env[SECRET_ENV] !== '') {
    secret = Buffer.from(env[SECRET_ENV], 'utf8');
    origin = SECRET_ENV;
  }
  if (secret === undefined) return undefined;
  if (secret.length < MIN_SECRET_BYTES) {
    throw new TransportError(
      'config',
      `cluster secret from ${origin} is too short (${secret.length} bytes, need at least ${MIN_SECRET_BYTES}): ${HOW_TO}`,
    );
  }
  return secret;
}

function readSecretFile(file: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TransportError('config', `cannot read cluster secret file ${file}: ${(error as Error).message}`, { cause: error });
  }
  return Buffer.from(text.trim(), 'utf8');
}

/**
 * Running without a secret means anyone who can reach the port can join and feed us tensors, so it is
 * only allowed when the address cannot be reached from another machine.
 */
export function requireSecretUnlessLoopback(secret: Uint8Array | undefined, host: string, action: 'listen' | 'connect'): void {
  if (secret !== undefined || isLoopbackHost(host)) return;
  throw new TransportError(
    'config',
    `no cluster secret: refusing to ${action} on ${host} without one (only loopback addresses may run unauthenticated): ${HOW_TO}`,
  );
}

export { HOW_TO as SECRET_HOW_TO };
