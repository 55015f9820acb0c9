import { z } from 'zod';
import { createLogger, type Logger } from '../../../shared/log/logger.js';
import { connect, defineMessages, listen, type Link, type LinkServer, type MessageOf, type SecretSource, type TransportLimits } from '../../../shared/transport/index.js';
import { dialWithRetry } from '../../neighbour-links/dial-with-retry.js';
import { IncomingLinks } from '../../neighbour-links/incoming-links.js';
import { PipelineError } from '../errors.js';
import type { StageNeighbours } from './neighbour-link.js';
import { transportNeighbourLink } from './transport-link.js';

/** The one control message of a stage link: the dialer (stage s) says who it is to stage s + 1. */
export const stageMessages = defineMessages({
  'stage-hello': {
    stage: z.number().int().min(0),
    stages: z.number().int().min(1),
    replica: z.number().int().min(0),
    epoch: z.number().int().min(0),
  },
  /** Sent by a stage after its last send: its neighbour may close once it has its own data too. */
  'stage-done': { stage: z.number().int().min(0) },
});
type StageMessage = MessageOf<typeof stageMessages>;

export interface StageNodeOptions extends SecretSource {
  stage: number;
  stages: number;
  /** Which pipeline replica this stage belongs to (pipeline + data parallel); default 0. */
  replica?: number;
  /** Membership epoch; links and frames of another epoch are refused. Default 0. */
  epoch?: number;
  cluster: string;
  nodeId?: string;
  /** Address to listen on for the previous stage (default 127.0.0.1); port 0 picks a free one. */
  host?: string;
  port?: number;
  limits?: Partial<TransportLimits>;
  /** Largest tensor frame this stage sends (default 4 MiB). */
  chunkBytes?: number;
  logger?: Logger;
}

export interface StageAddress {
  host: string;
  port: number;
}

export interface JoinedStage {
  neighbours: StageNeighbours;
  /** The transport links, for callers that add their own neighbour views (e.g. one per run epoch). */
  links: { previous?: Link<StageMessage>; next?: Link<StageMessage> };
  /**
   * Closes after a successful run: tells both neighbours this stage is done and waits until they say
   * the same (closing a link drops what the other side has not read yet, such as the last gradients).
   */
  close(timeoutMs?: number): Promise<void>;
  /** Closes at once (after a failure), so the neighbours fail fast too. */
  abort(reason: string): Promise<void>;
}

/**
 * One stage's end of the pipeline's data plane: listen (so the launcher or coordinator learns the
 * port), then `join` with the next stage's address. Stage s dials s + 1, which checks from the
 * `stage-hello` that it is its previous stage of the same pipeline; one link carries activations
 * forward and gradients backward.
 */
export class StageNode {
  private readonly log: Logger;
  private readonly incoming = new IncomingLinks<StageMessage>();

  private constructor(
    private readonly options: StageNodeOptions,
    private readonly server: LinkServer<StageMessage> | undefined,
  ) {
    this.log = options.logger ?? createLogger('pipeline');
  }

  static async listen(options: StageNodeOptions): Promise<StageNode> {
    const { stage, stages } = options;
    if (!Number.isInteger(stages) || stages < 1) throw new PipelineError('usage', `the number of stages must be a positive integer, got ${stages}`);
    if (!Number.isInteger(stage) || stage < 0 || stage >= stages) throw new PipelineError('usage', `stage must be an integer in [0, ${stages}), got ${stage}`);
    // The first stage has no previous stage, so nobody dials it.
    if (stage === 0) return new StageNode(options, undefined);
    let node: StageNode | undefined;
    const server = await listen<StageMessage>({
      ...linkOptions(options),
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      onLink: (link) => node?.accept(link),
    });
    node = new StageNode(options, server);
    return node;
  }

  /** Where the previous stage should dial (undefined on the first stage). */
  get address(): StageAddress | undefined {
    return this.server ? { host: this.server.host, port: this.server.port } : undefined;
  }

  /** Dials the next stage (unless last) and waits for the previous one (unless first), within `timeoutMs`. */
  async join(args: { next?: StageAddress }, timeoutMs = 30_000): Promise<JoinedStage> {
    const { stage, stages } = this.options;
    const isLast = stage === stages - 1;
    if (!isLast && !args.next) throw new PipelineError('usage', `stage ${stage} of ${stages} needs the next stage's address`);
    const deadline = Date.now() + timeoutMs;
    let next: Link<StageMessage> | undefined;
    try {
      if (!isLast) {
        next = await this.dial(args.next!, deadline);
        await next.sendControl({ type: 'stage-hello', stage, stages, replica: this.options.replica ?? 0, epoch: this.options.epoch ?? 0 });
      }
      const previous = stage > 0 ? await this.awaitPrevious(deadline) : undefined;
      const epoch = this.options.epoch ?? 0;
      const view = (link: Link<StageMessage>) => transportNeighbourLink(link, { epoch, ...(this.options.chunkBytes ? { chunkBytes: this.options.chunkBytes } : {}) });
      const neighbours: StageNeighbours = {};
      if (previous) neighbours.previous = view(previous);
      if (next) neighbours.next = view(next);
      this.log.debug({ stage, stages, previous: previous?.peerLabel, next: next?.peerLabel }, 'pipeline stage joined');
      const links = [previous, next].filter((link): link is Link<StageMessage> => link !== undefined);
      const abort = async (reason: string) => {
        for (const link of links) link.close(reason);
        await this.server?.close();
      };
      return {
        neighbours,
        links: { ...(previous ? { previous } : {}), ...(next ? { next } : {}) },
        close: async (closeTimeoutMs = 30_000) => {
          try {
            // Wait first, then tell: the neighbour may close as soon as it hears from us, and its
            // own 'stage-done' must already have a taker by then.
            const neighboursDone = Promise.all(links.map((link) => link.nextControl('stage-done', { timeoutMs: closeTimeoutMs })));
            neighboursDone.catch(() => {});
            await Promise.all(links.map((link) => link.sendControl({ type: 'stage-done', stage })));
            await neighboursDone;
          } finally {
            await abort('pipeline finished');
          }
        },
        abort,
      };
    } catch (error) {
      next?.close('pipeline setup failed');
      await this.server?.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  private accept(link: Link<StageMessage>): void {
    this.incoming.accept(link);
  }

  /** Retries refused connections until the deadline: the next stage may still be starting. */
  private dial(next: StageAddress, deadline: number): Promise<Link<StageMessage>> {
    return dialWithRetry(
      (timeoutMs) => connect<StageMessage>({ ...linkOptions(this.options), host: next.host, port: next.port, timeoutMs }),
      deadline,
      (error) => new PipelineError('link', `stage ${this.options.stage} cannot reach the next stage at ${next.host}:${next.port}: ${error.message}`, { cause: error }),
    );
  }

  /** The first accepted link whose hello names this stage's previous stage; others are closed. */
  private awaitPrevious(deadline: number): Promise<Link<StageMessage>> {
    const { stage, stages } = this.options;
    const replica = this.options.replica ?? 0;
    const epoch = this.options.epoch ?? 0;
    return this.incoming.first(
      deadline,
      async (link) => {
        const hello = await link.nextControl('stage-hello', { timeoutMs: Math.max(1, deadline - Date.now()) }).catch(() => undefined);
        if (hello && hello.stage === stage - 1 && hello.stages === stages && hello.replica === replica && hello.epoch === epoch) return undefined;
        const got = hello ? `stage ${hello.stage} of ${hello.stages}, replica ${hello.replica}, epoch ${hello.epoch}` : 'no stage-hello';
        this.log.warn({ peer: link.peerLabel, got }, `refusing a link: expected stage ${stage - 1} of ${stages}, replica ${replica}, epoch ${epoch}`);
        return `expected stage ${stage - 1} of ${stages} (replica ${replica}, epoch ${epoch}), got ${got}`;
      },
      () => new PipelineError('timeout', `stage ${stage}: the previous stage did not connect in time`),
    );
  }
}

function linkOptions(options: StageNodeOptions) {
  return {
    cluster: options.cluster,
    nodeId: options.nodeId ?? `stage-${options.stage}${options.replica ? `-replica-${options.replica}` : ''}`,
    role: 'pipeline-stage',
    messages: stageMessages,
    ...(options.secret !== undefined ? { secret: options.secret } : {}),
    ...(options.secretFile !== undefined ? { secretFile: options.secretFile } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  };
}
