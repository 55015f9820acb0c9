import type { Logger } from '../../log/logger.js';
import { protocolError } from '../errors.js';
import type { ControlMessage } from '../messages/define-messages.js';
import type { DeadlineQueue } from './deadline-queue.js';
import { PendingWait } from './pending-wait.js';

type Handler<M> = (message: M) => void;

/**
 * Received control messages, by type: each goes to the oldest waiter for its type, else to the
 * handlers subscribed to its type, else into a bounded queue until someone asks for it.
 */
export class ControlInbox<M extends ControlMessage> {
  private readonly queued: M[] = [];
  private readonly waiters = new Map<string, PendingWait<M>[]>();
  private readonly handlers = new Map<string, Set<Handler<M>>>();

  constructor(
    private readonly maxQueued: number,
    private readonly log: Logger,
    private readonly deadlines: DeadlineQueue,
  ) {}

  deliver(message: M): void {
    const waiter = this.waiters.get(message.type)?.shift();
    if (waiter) {
      waiter.resolve(message);
      return;
    }
    const handlers = this.handlers.get(message.type);
    if (handlers && handlers.size > 0) {
      for (const handler of handlers) this.runHandler(handler, message);
      return;
    }
    if (this.queued.length >= this.maxQueued) {
      const types = [...new Set(this.queued.map((m) => m.type))].slice(0, 8).join(', ');
      throw protocolError(
        `control queue overflow: ${this.queued.length} messages nobody took (types: ${types}); subscribe with onControl or await nextControl`,
      );
    }
    this.queued.push(message);
  }

  next<T extends M['type']>(type: T, timeoutMs: number, describeTimeout: (timeoutMs: number) => string): Promise<Extract<M, { type: T }>> {
    const index = this.queued.findIndex((message) => message.type === type);
    if (index >= 0) {
      const [message] = this.queued.splice(index, 1);
      return Promise.resolve(message as Extract<M, { type: T }>);
    }
    const wait = new PendingWait<M>(timeoutMs, describeTimeout, (expired) => this.forget(type, expired), this.deadlines);
    const list = this.waiters.get(type) ?? [];
    list.push(wait);
    this.waiters.set(type, list);
    return wait.promise as Promise<Extract<M, { type: T }>>;
  }

  subscribe<T extends M['type']>(type: T, handler: Handler<Extract<M, { type: T }>>): () => void {
    const set = this.handlers.get(type) ?? new Set<Handler<M>>();
    set.add(handler as Handler<M>);
    this.handlers.set(type, set);
    // Messages that arrived before the subscription are not lost.
    for (let i = 0; i < this.queued.length; ) {
      const message = this.queued[i] as M;
      if (message.type === type) {
        this.queued.splice(i, 1);
        this.runHandler(handler as Handler<M>, message);
      } else {
        i++;
      }
    }
    return () => {
      set.delete(handler as Handler<M>);
    };
  }

  failAll(error: Error): void {
    for (const list of this.waiters.values()) for (const wait of list) wait.reject(error);
    this.waiters.clear();
    this.handlers.clear();
  }

  private forget(type: string, wait: PendingWait<M>): void {
    const list = this.waiters.get(type);
    const index = list?.indexOf(wait) ?? -1;
    if (list && index >= 0) list.splice(index, 1);
  }

  private runHandler(handler: Handler<M>, message: M): void {
    try {
      handler(message);
    } catch (error) {
      // The application's bug must not be blamed on the peer or close the link.
      this.log.error({ err: error, type: message.type }, 'control message handler threw');
    }
  }
}
