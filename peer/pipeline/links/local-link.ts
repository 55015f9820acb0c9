import { PipelineError } from '../errors.js';
import { checkData, checkTag, describeTag, type NeighbourLink, type StageTensor, type TensorTag } from './neighbour-link.js';

interface Waiter {
  resolve(item: { tag: TensorTag; data: StageTensor }): void;
  reject(error: Error): void;
}

/** One direction of an in-memory link: a queue of tagged tensors. */
class Mailbox {
  private readonly items: { tag: TensorTag; data: StageTensor }[] = [];
  private readonly waiters: Waiter[] = [];
  private closedBy: Error | undefined;

  put(tag: TensorTag, data: StageTensor): void {
    if (this.closedBy) throw this.closedBy;
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve({ tag, data });
    else this.items.push({ tag, data });
  }

  take(timeoutMs: number, describe: () => string): Promise<{ tag: TensorTag; data: StageTensor }> {
    const item = this.items.shift();
    if (item) return Promise.resolve(item);
    if (this.closedBy) return Promise.reject(this.closedBy);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new PipelineError('timeout', describe()));
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.push(waiter);
    });
  }

  get hasItems(): boolean {
    return this.items.length > 0;
  }

  close(error: Error): void {
    this.closedBy ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}

/**
 * Two linked ends for neighbouring stages in one process (the in-process pipeline and tests). Data is
 * copied on send, as it would be on the wire, so a stage can never see its neighbour's buffers.
 */
export function localLinkPair(labels: [string, string] = ['stage a', 'stage b']): [NeighbourLink, NeighbourLink] {
  const toB = new Mailbox();
  const toA = new Mailbox();
  const end = (outbox: Mailbox, inbox: Mailbox, self: string, peer: string): NeighbourLink => ({
    label: peer,
    send(tag, data) {
      try {
        outbox.put(tag, data.slice());
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error);
      }
    },
    async receive(expected, timeoutMs, into) {
      const { tag, data } = await inbox.take(timeoutMs, () => `${self} waited ${timeoutMs} ms for the ${describeTag(expected)} from ${peer}`);
      checkTag(expected, tag, peer);
      checkData(expected, data, peer);
      if (!into || into.length !== data.length) return data;
      into.set(data);
      return into;
    },
    hasArrived: () => inbox.hasItems,
    close(reason = 'closed') {
      const error = new PipelineError('link', `link between ${self} and ${peer} closed: ${reason}`);
      outbox.close(error);
      inbox.close(error);
    },
  });
  return [end(toB, toA, labels[0], labels[1]), end(toA, toB, labels[1], labels[0])];
}
