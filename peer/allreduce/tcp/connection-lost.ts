import { RingError } from '../ring-errors.js';

/** The error for a data connection that went away, worded for the user (resets usually mean a peer died). */
export function connectionLost(which: 'next' | 'previous', label: string, error?: Error & { code?: string }): RingError {
  const reset = error?.code === 'ECONNRESET' || error?.code === 'EPIPE';
  const what = !error ? 'closed' : reset ? 'was reset (peer process exited or network dropped)' : `failed: ${error.message}`;
  return new RingError('link', `data connection ${which === 'next' ? 'to the next' : 'from the previous'} rank (${label}) ${what}`);
}
