/** DNS-SD service type every ringpipe node advertises: `_ringpipe._tcp.local`. */
export const SERVICE_TYPE = 'ringpipe';
export const SERVICE_PROTOCOL = 'tcp';
export const SERVICE_TYPE_FQDN = `_${SERVICE_TYPE}._${SERVICE_PROTOCOL}.local`;

export type NodeRole = 'coordinator' | 'peer';
export const NODE_ROLES: readonly NodeRole[] = ['coordinator', 'peer'];
