import type { ServerResponse } from 'node:http';

/**
 * The page loads its script and styles from this server only, opens the websocket back to it, and
 * may not be framed; uPlot sizes elements through `style`, hence the inline-style allowance.
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

export function send(response: ServerResponse, status: number, contentType: string, body: string | Uint8Array, cache = 'no-store'): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': contentType, 'cache-control': cache, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

export function sendJson(response: ServerResponse, status: number, value: unknown): void {
  send(response, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

/** Errors as JSON `{ error }`, so the page can show the message as is. */
export function sendError(response: ServerResponse, status: number, message: string): void {
  sendJson(response, status, { error: message });
}

export function startStream(response: ServerResponse, contentType: string, extra: Record<string, string> = {}): void {
  response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': contentType, 'cache-control': 'no-store', ...extra });
}
