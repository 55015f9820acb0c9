/**
 * Version of the ringpipe wire protocol, advertised in every node's TXT record so that nodes
 * speaking different protocols never try to join each other. Bump it on any incompatible change.
 * Lives here until `shared/transport/` exports its own constant; then this file re-exports that.
 */
export const PROTOCOL_VERSION = 1;
