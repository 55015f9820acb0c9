/**
 * The ringpipe wire protocol version, advertised in every node's TXT record so that nodes that
 * could never complete a handshake do not even try. One constant for the whole project: the
 * transport owns it (it is also checked in every frame and in the handshake).
 */
export { PROTOCOL_VERSION } from '../transport/constants.js';
