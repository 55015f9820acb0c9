/**
 * ringpipe transport: authenticated, flow-controlled links between nodes.
 *
 *   const messages = defineMessages({ hello: { text: z.string() } });
 *   const server = await listen({ cluster, nodeId, role: 'coordinator', messages, onLink });
 *   const link = await connect({ host, port: server.port, cluster, nodeId, role: 'peer', messages });
 *   await link.sendControl({ type: 'hello', text: 'hi' });
 *   await link.sendTensor({ epoch, step, tensorId }, gradients);
 *   const { header, data } = await link.nextTensor({ into: reusableBuffer, timeoutMs: 5_000 });
 *
 * See docs/readme-parts/transport.md.
 */
export { PROTOCOL_VERSION } from './constants.js';
export { TransportError, type TransportErrorCode } from './errors.js';
export { DEFAULT_LIMITS, resolveLimits, type TransportLimits } from './limits.js';
export { defineMessages, type ControlMessage, type MessageOf, type MessageRegistry, type MessagesOf } from './messages/define-messages.js';
export { listen, type LinkServer, type ListenOptions, type Refused } from './listen.js';
export { connect, type ConnectOptions } from './connect.js';
export type { LinkOptions } from './link-options.js';
export { Link, type LinkEvents, type NextTensorOptions, type PeerInfo, type TensorSendHeader, type WaitOptions } from './link/link.js';
export type { TensorFrame } from './link/tensor-inbox.js';
export { CloseCode, type LinkCloseInfo } from './link/close-info.js';
export { loadSecret, MIN_SECRET_BYTES, SECRET_ENV, SECRET_FILE_ENV, secretSourceOf, type SecretSource } from './auth/secret.js';
export { isLoopbackHost } from './auth/loopback.js';
export type { DType, TensorArray } from './wire/dtype.js';
export { TENSOR_HEADER_BYTES, type TensorHeader } from './wire/tensor-header.js';
