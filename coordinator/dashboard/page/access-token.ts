/**
 * The dashboard token, from the address the coordinator printed (`#token=…`, a fragment the browser
 * never sends to any server) or typed in. Kept for this tab only, and taken out of the address bar.
 */
const STORAGE_KEY = 'ringpipe-dashboard-token';

export function takeTokenFromAddress(): void {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(STORAGE_KEY, decodeURIComponent(match[1]!));
  history.replaceState(null, '', location.pathname + location.search);
}

export function currentToken(): string | undefined {
  return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
}

export function setToken(token: string): void {
  sessionStorage.setItem(STORAGE_KEY, token.trim());
}

export function authorizationHeaders(): Record<string, string> {
  const token = currentToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** For links and the websocket, where a browser cannot set a header. */
export function withToken(path: string): string {
  const token = currentToken();
  return token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : path;
}
