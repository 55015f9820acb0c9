import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../../../shared/log/logger.js';
import type { DashboardModel } from '../model/dashboard-model.js';
import type { FeedMessage, StepPoint } from '../model/view-types.js';

/** At most this many updates a second go to the pages, however fast the steps come. */
const UPDATE_INTERVAL_MS = 250;
/** A page that cannot keep up (slow link, hidden tab) is skipped until its socket drains. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * The `/live` websocket: a snapshot (view + all points) on connect, then at most four updates a
 * second, each with the current view and the points added since the last one. Points carry a
 * sequence number, so a page that got a point in its snapshot and again in the next update keeps
 * one.
 */
export class LiveFeed {
  private readonly server = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1024 });
  private readonly newPoints: StepPoint[] = [];
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;
  /** Pages that missed an update (socket full): they get a fresh snapshot once it drains. */
  private readonly behind = new WeakSet<WebSocket>();

  constructor(
    private readonly model: DashboardModel,
    private readonly log: Logger,
  ) {
    model.on('changed', this.onChanged);
    model.on('point', this.onPoint);
    this.timer = setInterval(() => this.flush(), UPDATE_INTERVAL_MS);
    this.timer.unref();
  }

  get clients(): number {
    return this.server.clients.size;
  }

  /** Takes over an HTTP upgrade that the access policy has allowed. */
  accept(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.server.handleUpgrade(request, socket, head, (ws) => {
      ws.on('error', (error) => this.log.debug({ err: error }, 'dashboard feed socket error'));
      // The feed is one-way; anything a page sends is ignored.
      ws.on('message', () => {});
      this.sendTo(ws, { type: 'snapshot', view: this.model.view(), points: [...this.model.points] });
    });
  }

  close(): void {
    clearInterval(this.timer);
    this.model.off('changed', this.onChanged);
    this.model.off('point', this.onPoint);
    for (const ws of this.server.clients) ws.close(1001, 'the coordinator is stopping');
    this.server.close();
  }

  private readonly onChanged = (): void => {
    this.dirty = true;
  };

  private readonly onPoint = (point: StepPoint): void => {
    this.newPoints.push(point);
    this.dirty = true;
  };

  private flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const points = this.newPoints.splice(0);
    if (this.server.clients.size === 0) return;
    const view = this.model.view();
    const text = JSON.stringify({ type: 'update', view, points } satisfies FeedMessage);
    for (const ws of this.server.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      if (ws.bufferedAmount >= MAX_BUFFERED_BYTES) {
        this.behind.add(ws);
      } else if (this.behind.has(ws)) {
        this.behind.delete(ws);
        this.sendTo(ws, { type: 'snapshot', view, points: [...this.model.points] });
      } else {
        ws.send(text);
      }
    }
  }

  private sendTo(ws: WebSocket, message: FeedMessage): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
  }
}
