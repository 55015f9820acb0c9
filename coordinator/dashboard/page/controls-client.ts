import type { ControlAction } from '../model/view-types.js';
import { authorizationHeaders } from './access-token.js';

/** Sends one control to the coordinator; resolves with the message to show (never throws). */
export async function sendControl(action: ControlAction): Promise<{ ok: boolean; message: string }> {
  try {
    const response = await fetch(`/api/control/${action}`, { method: 'POST', headers: authorizationHeaders() });
    const body = (await response.json().catch(() => ({}))) as { message?: string; error?: string };
    return { ok: response.ok, message: body.message ?? body.error ?? `${action}: HTTP ${response.status}` };
  } catch (error) {
    return { ok: false, message: `${action}: the coordinator does not answer (${(error as Error).message})` };
  }
}
