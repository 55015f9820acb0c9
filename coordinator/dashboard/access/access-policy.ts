import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from '../../../shared/transport/index.js';
import { tokenMatches } from './dashboard-token.js';

export type Verdict = { ok: true } | { ok: false; status: 401 | 403; message: string };

const OK: Verdict = { ok: true };

/**
 * Who may do what. Bound to loopback, anyone on this machine may look, and only the token holder
 * may act (pause, checkpoint…). Exposed on another address, looking needs the token too. The
 * token comes in `Authorization: Bearer …`; reads (websocket, downloads, a Prometheus scrape) may
 * also pass it as `?token=`, which a browser cannot put in a header there. Controls take the
 * header only: a cross-site form cannot set it.
 */
export class AccessPolicy {
  constructor(
    private readonly token: string,
    /** Bound to an address other machines can reach. */
    readonly exposed: boolean,
  ) {}

  /** The static page and its scripts hold nothing secret; a loopback-bound dashboard still checks Host. */
  canLoadPage(request: IncomingMessage): Verdict {
    return this.hostAllowed(request);
  }

  canRead(request: IncomingMessage, url: URL): Verdict {
    const host = this.hostAllowed(request);
    if (!host.ok) return host;
    if (!this.exposed) return OK;
    return this.tokenIn(request, url, true);
  }

  canControl(request: IncomingMessage, url: URL): Verdict {
    const host = this.hostAllowed(request);
    if (!host.ok) return host;
    return this.tokenIn(request, url, false);
  }

  /**
   * A websocket from a page of another site would ride on the user's access to loopback: the
   * browser sends that page's Origin, which must then be this dashboard's own.
   */
  canOpenFeed(request: IncomingMessage, url: URL): Verdict {
    const origin = request.headers.origin;
    if (origin !== undefined) {
      let originHost: string;
      try {
        originHost = new URL(origin).host;
      } catch {
        return { ok: false, status: 403, message: `bad Origin header ${JSON.stringify(origin).slice(0, 80)}` };
      }
      if (originHost !== request.headers.host) return { ok: false, status: 403, message: `a page from ${origin} may not open this dashboard's feed` };
    }
    return this.canRead(request, url);
  }

  /**
   * Bound to loopback, a request must also name a loopback host: a web page whose DNS name was
   * re-pointed to 127.0.0.1 (DNS rebinding) sends its own name and is turned away.
   */
  private hostAllowed(request: IncomingMessage): Verdict {
    if (this.exposed) return OK;
    const host = request.headers.host ?? '';
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
    if (isLoopbackHost(name)) return OK;
    return { ok: false, status: 403, message: `this dashboard only answers requests for a loopback host (got Host: ${host.slice(0, 80)}); start the coordinator with --dashboard-host to expose it` };
  }

  private tokenIn(request: IncomingMessage, url: URL, queryAllowed: boolean): Verdict {
    const header = request.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
    const given = bearer ?? (queryAllowed ? (url.searchParams.get('token') ?? undefined) : undefined);
    if (given === undefined) {
      return { ok: false, status: 401, message: 'this needs the dashboard token: open the address the coordinator printed (it carries #token=…), or send Authorization: Bearer <token>' };
    }
    if (!tokenMatches(given, this.token)) return { ok: false, status: 403, message: 'wrong dashboard token' };
    return OK;
  }
}
