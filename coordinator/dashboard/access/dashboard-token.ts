import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { loadSecret, type SecretSource } from '../../../shared/transport/index.js';

export const DASHBOARD_TOKEN_ENV = 'RINGPIPE_DASHBOARD_TOKEN';
const MIN_TOKEN_LENGTH = 16;

export interface DashboardToken {
  value: string;
  /** Where it came from, for the start-up line. */
  origin: 'flag' | 'env' | 'cluster secret' | 'random';
}

/**
 * The token that unlocks the dashboard's controls (and, when it is exposed beyond loopback, every
 * page and feed). In order: `--dashboard-token`, RINGPIPE_DASHBOARD_TOKEN, one derived from the
 * cluster secret (HMAC, so the secret itself never travels over HTTP, and a restarted coordinator
 * keeps the same token), else a random one for this run.
 */
export function resolveDashboardToken(flag: string | undefined, secretSource: SecretSource = {}): DashboardToken {
  const env = secretSource.env ?? process.env;
  const given = flag ?? env[DASHBOARD_TOKEN_ENV];
  if (given !== undefined && given !== '') {
    const origin = flag !== undefined ? '--dashboard-token' : DASHBOARD_TOKEN_ENV;
    if (given.length < MIN_TOKEN_LENGTH) {
      throw new Error(`${origin} is too short (${given.length} characters, need at least ${MIN_TOKEN_LENGTH}); e.g. the output of \`openssl rand -hex 16\``);
    }
    if (!/^[\x21-\x7e]+$/.test(given)) throw new Error(`${origin} must be printable ASCII without spaces`);
    return { value: given, origin: flag !== undefined ? 'flag' : 'env' };
  }
  const secret = loadSecret(secretSource);
  if (secret) return { value: createHmac('sha256', secret).update('ringpipe dashboard token v1').digest('base64url').slice(0, 32), origin: 'cluster secret' };
  return { value: randomBytes(24).toString('base64url'), origin: 'random' };
}

/** Constant-time comparison (hashing first makes the lengths equal). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}
