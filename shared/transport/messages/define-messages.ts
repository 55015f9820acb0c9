import { z } from 'zod';
import { protocolError } from '../errors.js';

/** Anything sent with Link.sendControl: an object whose `type` names its schema. */
export interface ControlMessage {
  type: string;
}

/**
 * The set of control messages one protocol (e.g. coordinator ⇄ peer) may exchange. Both ends of a
 * link use the same registry; anything that is not one of these messages, exactly, is rejected.
 */
export interface MessageRegistry<M extends ControlMessage> {
  readonly types: ReadonlySet<string>;
  /** Returns the validated message or throws a `protocol` TransportError saying what is wrong. */
  parse(value: unknown): M;
}

type MessageShapes = Record<string, z.ZodRawShape>;

/** `{ join: { rank: z.number() } }` → `{ type: 'join'; rank: number }`. */
export type MessagesOf<S extends MessageShapes> = {
  // `type` goes into the shape (not an intersection) so an empty shape still yields `{ type: K }`.
  [K in keyof S & string]: z.output<z.ZodObject<S[K] & { type: z.ZodLiteral<K> }>> & { type: K };
}[keyof S & string];

/**
 * Declares a protocol's control messages from zod shapes, keyed by message type:
 *
 *   const coordinatorMessages = defineMessages({
 *     join: { nodeId: z.string() },
 *     assign: { epoch: z.number().int(), rank: z.number().int() },
 *   });
 *   type CoordinatorMessage = MessageOf<typeof coordinatorMessages>;
 *
 * Objects are strict: unknown fields are rejected as well as wrong field types.
 */
export function defineMessages<S extends MessageShapes>(shapes: S): MessageRegistry<MessagesOf<S>> {
  const types = Object.keys(shapes);
  if (types.length === 0) throw new Error('defineMessages needs at least one message type');
  const schemas = new Map<string, z.ZodType>(
    types.map((type) => [type, z.strictObject({ ...shapes[type], type: z.literal(type) })]),
  );
  return {
    types: new Set(types),
    parse(value: unknown): MessagesOf<S> {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw protocolError('control message is not a map');
      }
      const type = (value as { type?: unknown }).type;
      const schema = typeof type === 'string' ? schemas.get(type) : undefined;
      if (schema === undefined) {
        throw protocolError(`unknown control message type ${JSON.stringify(type)?.slice(0, 64) ?? 'undefined'}`);
      }
      const result = schema.safeParse(value);
      if (!result.success) {
        throw protocolError(`invalid '${type as string}' message: ${z.prettifyError(result.error).replace(/\n/g, '; ').slice(0, 300)}`);
      }
      return result.data as MessagesOf<S>;
    },
  };
}

/** The message union of a registry. */
export type MessageOf<R> = R extends MessageRegistry<infer M> ? M : never;
