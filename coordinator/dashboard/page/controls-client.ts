import type { ControlAction, DistillRequest } from '../model/view-types.js';
import { authorizationHeaders } from './access-token.js';

/** Sends one control to the coordinator; resolves with the message to show (never throws). */
export async function sendControl(action: ControlAction, body?: DistillRequest): Promise<{ ok: boolean; message: string }> {
  try {
    const response = await fetch(`/api/control/${action}`, {
      method: 'POST',
      headers: { ...authorizationHeaders(), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const reply = (await response.json().catch(() => ({}))) as { message?: string; error?: string };
    return { ok: response.ok, message: reply.message ?? reply.error ?? `${action}: HTTP ${response.status}` };
  } catch (error) {
    return { ok: false, message: `${action}: the coordinator does not answer (${(error as Error).message})` };
  }
}
