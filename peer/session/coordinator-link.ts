import type { Link } from '../../shared/transport/index.js';
import type { ClusterMessage } from '../../coordinator/protocol/cluster-messages.js';

/** The peer's authenticated link to its coordinator. */
export type CoordinatorLink = Link<ClusterMessage>;

/** Sends without throwing: a dead coordinator link is handled by the session's close handler. */
export function sendQuietly(link: CoordinatorLink, message: ClusterMessage): void {
  if (!link.isOpen) return;
  try {
    link.sendControl(message).catch(() => {});
  } catch {
    // Closed between the check and the send; the close handler takes over.
  }
}
