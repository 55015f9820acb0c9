import { z } from 'zod';
import { defineMessages, type MessageOf } from './define-messages.js';

/**
 * The transport's own messages ('S' frames): the handshake and flow-control credit. Applications never
 * see them. `hello`, `challenge` and `refuse` must keep this shape in every protocol version, since
 * they are how two different versions tell each other that they differ.
 */
const bytes32 = z.custom<Uint8Array>((value) => value instanceof Uint8Array && value.length === 32, 'must be 32 bytes');
const nonce = bytes32;
const mac = bytes32;
const name = z.string().min(1).max(128);

const introduction = {
  protocolVersion: z.number().int().min(0).max(255),
  cluster: name,
  nodeId: name,
  role: z.string().min(1).max(64),
  nonce,
  /** False when this side runs without a cluster secret (loopback only). */
  secured: z.boolean(),
  /** Tensor bytes this side accepts in flight (flow-control window). */
  receiveWindow: z.number().int().positive(),
};

export const refuseCodes = ['version', 'cluster', 'secret', 'no-secret', 'busy', 'protocol'] as const;
export type RefuseCode = (typeof refuseCodes)[number];

export const sessionMessages = defineMessages({
  /** dialer → listener, first frame */
  hello: introduction,
  /** listener → dialer */
  challenge: introduction,
  /** dialer → listener: HMAC over the transcript with the dialer's label (null without secrets) */
  proof: { mac: mac.nullable() },
  /** listener → dialer: the listener's HMAC (null when neither side has a secret) */
  welcome: { mac: mac.nullable() },
  /** either side: the handshake failed, and why in words meant for a human */
  refuse: { code: z.enum(refuseCodes), reason: z.string().max(512) },
  /** receiver → sender: this many more tensor bytes may be sent */
  credit: { bytes: z.number().int().positive() },
});

export type SessionMessage = MessageOf<typeof sessionMessages>;
/** The fields of hello and challenge, which are the same. */
export type Introduction = Omit<Extract<SessionMessage, { type: 'hello' }>, 'type'> & { type: 'hello' | 'challenge' };
