import type { ControlMessage, Link } from '../../shared/transport/index.js';

/**
 * Links accepted from neighbours that dial us (the previous rank, the previous stage), queued until
 * someone asks for one. `first` returns the first whose hello the caller accepts; the others are
 * closed with the caller's reason, so a stray or stale dialer never takes a neighbour's place.
 */
export class IncomingLinks<M extends ControlMessage> {
  private readonly candidates: Link<M>[] = [];
  private onCandidate: (() => void) | undefined;

  accept(link: Link<M>): void {
    this.candidates.push(link);
    this.onCandidate?.();
  }

  /**
   * The first link for which `check` (reading its hello) returns undefined; a link it returns a
   * reason for is closed with that reason. Rejects with `timeout()` when none came by `deadline`.
   */
  async first(deadline: number, check: (link: Link<M>) => Promise<string | undefined>, timeout: () => Error): Promise<Link<M>> {
    for (;;) {
      const link = this.candidates.shift() ?? (await this.next(deadline, timeout));
      const refusal = await check(link);
      if (refusal === undefined) return link;
      link.close(refusal);
    }
  }

  private next(deadline: number, timeout: () => Error): Promise<Link<M>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onCandidate = undefined;
        reject(timeout());
      }, Math.max(1, deadline - Date.now()));
      this.onCandidate = () => {
        const link = this.candidates.shift();
        if (!link) return;
        clearTimeout(timer);
        this.onCandidate = undefined;
        resolve(link);
      };
    });
  }
}
