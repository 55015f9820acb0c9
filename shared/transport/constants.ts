/**
 * The wire protocol version. Every frame carries it (byte 3 of the frame prefix) and the handshake
 * refuses a peer that speaks another one, so bump it on any incompatible change to the frame
 * layout, the handshake or the session messages.
 */
export const PROTOCOL_VERSION = 1;

/** Label mixed into every handshake proof so a MAC from another protocol can never be replayed here. */
export const PROOF_LABEL = 'ringpipe-link-proof';
