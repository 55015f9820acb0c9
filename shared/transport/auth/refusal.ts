import type { RefuseCode } from '../messages/session-messages.js';
import { SECRET_ENV } from './secret.js';

/**
 * The two texts of every refusal: `toPeer` travels in the refuse message and is written for the
 * operator of the refused node (what to do); `local` is what the refusing node logs.
 */
export interface Refusal {
  code: RefuseCode;
  toPeer: string;
  local: string;
}

interface Side {
  protocolVersion: number;
  cluster: string;
  role: string;
  secured: boolean;
}

/** Checks an introduction against ours; the first mismatch becomes a refusal. */
export function findMismatch(mine: Side, theirs: Side): Refusal | undefined {
  if (theirs.protocolVersion !== mine.protocolVersion) {
    return {
      code: 'version',
      toPeer: `protocol version mismatch: it speaks ringpipe protocol ${mine.protocolVersion}, this node speaks ${theirs.protocolVersion} — run the same ringpipe version on every node`,
      local: `it speaks protocol version ${theirs.protocolVersion}, this node speaks ${mine.protocolVersion} — run the same ringpipe version on every node`,
    };
  }
  if (theirs.cluster !== mine.cluster) {
    return {
      code: 'cluster',
      toPeer: `cluster name mismatch: it belongs to cluster '${mine.cluster}', this node asked for '${theirs.cluster}' — use the same cluster name on every node`,
      local: `it belongs to cluster '${theirs.cluster}', this node to '${mine.cluster}'`,
    };
  }
  if (mine.secured && !theirs.secured) {
    return {
      code: 'no-secret',
      toPeer: `the cluster requires a secret and this node has none — set ${SECRET_ENV} to the ${mine.role}'s secret`,
      local: `it has no cluster secret and this node requires one`,
    };
  }
  if (!mine.secured && theirs.secured) {
    return {
      code: 'no-secret',
      toPeer: `it runs without a cluster secret but this node has one — set the same ${SECRET_ENV} on both nodes`,
      local: `it has a cluster secret and this node has none — set the same ${SECRET_ENV} on both nodes`,
    };
  }
  return undefined;
}

export function wrongSecret(refuserRole: string, cluster: string): Refusal {
  return {
    code: 'secret',
    toPeer: `wrong cluster secret — set ${SECRET_ENV} to the ${refuserRole}'s secret (the same on every node of cluster '${cluster}')`,
    local: `wrong cluster secret (its proof does not match this node's ${SECRET_ENV})`,
  };
}
