import type { ClusterMessage, ClusterMessageOf } from '../protocol/cluster-messages.js';
import type { Link } from '../../shared/transport/index.js';

export type PeerStatus = 'joining' | 'preparing' | 'prepared' | 'unfit' | 'gone';

/** What the coordinator knows about one connected peer. */
export class PeerHandle {
  status: PeerStatus = 'joining';
  hostname = '';
  pid = 0;
  prepared: Omit<ClusterMessageOf<'prepared'>, 'type'> | undefined;
  /** Why it left or was turned away (for messages about who is missing). */
  problem: string | undefined;
  /** Last committed step this peer reported. */
  step = -1;

  constructor(
    readonly link: Link<ClusterMessage>,
    /** Arrival order: earlier peers keep lower ranks across epochs, so rings change little. */
    readonly arrival: number,
  ) {}

  get nodeId(): string {
    return this.link.peer.nodeId;
  }

  /** The address the coordinator sees: where ring neighbours dial this peer. */
  get address(): string {
    return this.link.peer.address;
  }

  get label(): string {
    return `${this.nodeId} at ${this.address}${this.hostname ? ` (${this.hostname}, pid ${this.pid})` : ''}`;
  }

  get alive(): boolean {
    return this.status !== 'gone' && this.link.isOpen;
  }

  /** Sends without throwing; a dead link is noticed by its close handler. */
  send(message: ClusterMessage): Promise<void> {
    if (!this.link.isOpen) return Promise.resolve();
    try {
      return this.link.sendControl(message).catch(() => {});
    } catch {
      return Promise.resolve();
    }
  }
}
