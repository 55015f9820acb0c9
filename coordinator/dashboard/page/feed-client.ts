import type { DashboardView, FeedMessage, StepPoint } from '../model/view-types.js';
import { authorizationHeaders, withToken } from './access-token.js';

export type FeedStatus = 'connecting' | 'live' | 'reconnecting' | 'needs-token';

export interface FeedHandlers {
  data(view: DashboardView, points: StepPoint[], replace: boolean): void;
  status(status: FeedStatus, detail: string): void;
}

const RETRY_MS = 1_500;

/**
 * Keeps the page connected to the coordinator's `/live` feed, reconnecting after a drop (a
 * restarted coordinator comes back on the same address). A browser does not tell a page why a
 * websocket was refused, so access is checked with a plain request first: a 401/403 there means
 * the token is missing or wrong.
 */
export class FeedClient {
  private socket: WebSocket | undefined;
  private retry: number | undefined;

  constructor(private readonly handlers: FeedHandlers) {}

  async start(): Promise<void> {
    window.clearTimeout(this.retry);
    this.socket?.close();
    this.handlers.status('connecting', 'connecting to the coordinator…');
    let response: Response;
    try {
      response = await fetch('/api/view', { headers: authorizationHeaders(), cache: 'no-store' });
    } catch {
      this.scheduleRetry('the coordinator does not answer');
      return;
    }
    if (response.status === 401 || response.status === 403) {
      const body = (await response.json().catch(() => ({}))) as { error?: string };
      this.handlers.status('needs-token', body.error ?? 'this dashboard needs its token');
      return;
    }
    if (!response.ok) {
      this.scheduleRetry(`the coordinator answered ${response.status}`);
      return;
    }
    const url = new URL(withToken('/live'), location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener('open', () => this.handlers.status('live', 'live'));
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as FeedMessage;
      this.handlers.data(message.view, message.points, message.type === 'snapshot');
    });
    socket.addEventListener('close', () => {
      if (this.socket === socket) this.scheduleRetry('connection to the coordinator lost');
    });
  }

  private scheduleRetry(why: string): void {
    this.handlers.status('reconnecting', `${why}; retrying…`);
    this.retry = window.setTimeout(() => void this.start(), RETRY_MS);
  }
}
