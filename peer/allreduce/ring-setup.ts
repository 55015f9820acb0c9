import { z } from 'zod';
import type { Logger } from '../../shared/log/logger.js';
import { createLogger } from '../../shared/log/logger.js';
import { CloseCode, connect, defineMessages, listen, type Link, type LinkServer, type MessageOf, type SecretSource, type TransportLimits } from '../../shared/transport/index.js';
import { linkRingChannel } from './link-channel.js';
import { DEFAULT_CHUNK_BYTES } from './ring-collective.js';
import { offerDataConnection, openDataConnection } from './tcp/data-plane-setup.js';
import { TcpRingChannel } from './tcp/tcp-ring-channel.js';
import { DEFAULT_WARM_UP_FRAMES, warmUpRing } from './jit-warm-up.js';
import { allocateShared } from './wasm-arena.js';
import { ThreadedRingChannel } from './threaded/threaded-channel.js';
import { mod } from './partition.js';
import type { RingMembership } from './ring-channel.js';
import { RingError } from './ring-errors.js';
import { dialWithRetry } from '../neighbour-links/dial-with-retry.js';
import { IncomingLinks } from '../neighbour-links/incoming-links.js';

/** The one control message of a ring link: the dialer says which rank of which ring it is. */
export const ringMessages = defineMessages({
  'ring-hello': { rank: z.number().int().min(0), worldSize: z.number().int().min(1), epoch: z.number().int().min(0) },
  /** Where and with which one-time token the next rank opens the TCP data connection (data-plane-setup.ts). */
  'ring-data': { port: z.number().int().min(1).max(65535), token: z.string().regex(/^[0-9a-f]{64}$/) },
});
type RingMessage = MessageOf<typeof ringMessages>;

export interface RingNodeOptions extends SecretSource {
  rank: number;
  worldSize: number;
  /** Membership epoch: links of another epoch are refused, frames of another epoch rejected. */
  epoch?: number;
  cluster: string;
  nodeId?: string;
  /** Address to listen on for the previous rank (default 127.0.0.1), port 0 = any free port. */
  host?: string;
  port?: number;
  limits?: Partial<TransportLimits>;
  logger?: Logger;
}

export interface RingAddress {
  host: string;
  port: number;
}

/**
 * How chunks travel. `tcp` (default): a plain TCP connection per direction, announced and
 * authenticated over the ring link, read straight into reused buffers — about twice the link's
 * throughput here, because ws allocates a fresh buffer per frame (GC, first-touch). `link`: tensor
 * frames on the transport link itself (flow-controlled; kept as the reference and for comparison).
 * `tcp-threaded`: the same TCP connections driven by two I/O threads (threaded/), so sending,
 * receiving and reducing run in parallel; it costs more CPU per byte (thread hand-offs), so it wins
 * only when the machine is oversubscribed (docs/readme-parts/bench-allreduce.md).
 */
export type DataPlane = 'tcp' | 'tcp-threaded' | 'link';

export interface JoinOptions {
  /** Whole setup: dial, hello, data connections. Default 30 s. */
  timeoutMs?: number;
  dataPlane?: DataPlane;
  /**
   * Largest frame the data plane accepts (bounds what a peer can make us allocate). tcp: default
   * 64 MiB, slots grow to it as needed; tcp-threaded: the size of each preallocated shared slot,
   * default the ring's default chunk (1 MiB), so it must be ≥ the chunkBytes the ring then uses.
   */
  maxFrameBytes?: number;
  /** Frames queued per direction on the tcp planes. Default 4. */
  depth?: number;
  /**
   * Frames of the warm-up all-reduce run right after joining (jit-warm-up.ts), so the first real
   * collectives run optimised code. Default 4096 on the `tcp` plane, 0 (none) on the others and
   * with 0. Every rank must use the same value.
   */
  warmUpFrames?: number;
}

export interface JoinedRing {
  membership: RingMembership;
  /** Closes both links and the listener. */
  close(): Promise<void>;
}

/**
 * One rank's end of the ring's data plane: listen first (so the launcher or coordinator can learn
 * every rank's port), then `join` with the next rank's address. Each rank dials the next rank and
 * accepts the previous one, which proves its rank with a `ring-hello`.
 */
export class RingNode {
  private readonly log: Logger;
  private readonly epoch: number;
  private readonly incoming = new IncomingLinks<RingMessage>();

  private constructor(
    private readonly options: RingNodeOptions,
    private readonly server: LinkServer<RingMessage> | undefined,
  ) {
    this.log = options.logger ?? createLogger('ring');
    this.epoch = options.epoch ?? 0;
  }

  static async listen(options: RingNodeOptions): Promise<RingNode> {
    const { rank, worldSize } = options;
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new RingError('usage', `ring world size must be a positive integer, got ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new RingError('usage', `rank must be an integer in [0, ${worldSize}), got ${rank}`);
    if (worldSize === 1) return new RingNode(options, undefined);
    let node: RingNode | undefined;
    const server = await listen<RingMessage>({
      ...linkOptions(options),
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      onLink: (link) => node?.accept(link),
    });
    node = new RingNode(options, server);
    return node;
  }

  /** Where the previous rank should dial (undefined for a ring of one). */
  get address(): RingAddress | undefined {
    return this.server ? { host: this.server.host, port: this.server.port } : undefined;
  }

  /** Dials the next rank and waits for the previous one; all within `timeoutMs`. */
  async join(next: RingAddress | undefined, options: JoinOptions = {}): Promise<JoinedRing> {
    const { rank, worldSize } = this.options;
    if (!this.server) return { membership: { rank, worldSize }, close: async () => {} };
    if (!next) throw new RingError('usage', `rank ${rank} of ${worldSize} needs the next rank's address to join the ring`);
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    const outgoing = await this.dial(next, deadline);
    let incoming: Link<RingMessage> | undefined;
    try {
      await outgoing.sendControl({ type: 'ring-hello', rank, worldSize, epoch: this.epoch });
      incoming = await this.awaitPrevious(deadline);
      const links = { next: outgoing, previous: incoming };
      const data =
        options.dataPlane === 'link'
          ? undefined
          : options.dataPlane === 'tcp-threaded'
            ? await this.openThreadedDataPlane(links, deadline, options.maxFrameBytes ?? DEFAULT_CHUNK_BYTES, options.depth ?? 4)
            : await this.openDataPlane(links, deadline, options.maxFrameBytes ?? 64 * 1024 * 1024, options.depth ?? 4);
      const channel = data ?? linkRingChannel({ ...links, epoch: this.epoch });
      // The links stay open with the tcp data plane too: their heartbeats notice a hung peer. A peer
      // that closed its ring normally has finished; if we still need it, its data connection says so.
      for (const link of [outgoing, incoming]) {
        link.once('close', (info) => {
          if (info.byPeer && (info.code === CloseCode.normal || info.code === CloseCode.goingAway)) return;
          data?.fail(new RingError('link', `ring link to ${link.peerLabel} closed: ${info.reason}`));
        });
      }
      const warmUpFrames = options.warmUpFrames ?? (data instanceof TcpRingChannel ? DEFAULT_WARM_UP_FRAMES : 0);
      if (warmUpFrames > 0) {
        const started = performance.now();
        await warmUpRing(channel, { rank, worldSize }, { frames: warmUpFrames, maxInFlight: options.depth ?? 4, timeoutMs: Math.max(1, deadline - Date.now()) }).catch((error: unknown) => {
          data?.close();
          throw error;
        });
        this.log.debug({ frames: warmUpFrames, ms: Math.round(performance.now() - started) }, 'ring data plane warmed up');
      }
      this.log.debug({ rank, worldSize, next: outgoing.peerLabel, previous: incoming.peerLabel, dataPlane: data ? 'tcp' : 'link' }, 'ring joined');
      return {
        membership: { rank, worldSize, channel },
        close: async () => {
          data?.close();
          outgoing.close('ring closed');
          incoming?.close('ring closed');
          await this.server?.close();
        },
      };
    } catch (error) {
      outgoing.close('ring setup failed');
      incoming?.close('ring setup failed');
      await this.server.close();
      throw error;
    }
  }

  /** Announces our data port to the next rank and dials the previous rank's, in parallel. */
  private openThreadedDataPlane(links: { next: Link<RingMessage>; previous: Link<RingMessage> }, deadline: number, maxFrameBytes: number, depth: number): Promise<ThreadedRingChannel> {
    return ThreadedRingChannel.open({
      host: this.server!.host,
      deadline,
      labels: { next: links.next.peerLabel },
      announce: (offer) => links.next.sendControl({ type: 'ring-data', port: offer.port, token: offer.token }),
      previous: links.previous
        .nextControl('ring-data', { timeoutMs: Math.max(1, deadline - Date.now()) })
        .then((message) => ({ host: links.previous.peer.address, port: message.port, token: message.token })),
      options: { depth, maxFrameBytes, sendTimeoutMs: 60_000 },
    });
  }

  private async openDataPlane(links: { next: Link<RingMessage>; previous: Link<RingMessage> }, deadline: number, maxFrameBytes: number, depth: number): Promise<TcpRingChannel> {
    const offer = await offerDataConnection(this.server!.host);
    try {
      await links.next.sendControl({ type: 'ring-data', port: offer.port, token: offer.token });
      const announced = links.previous.nextControl('ring-data', { timeoutMs: Math.max(1, deadline - Date.now()) });
      const [toNext, fromPrevious] = await Promise.all([
        offer.accepted(deadline),
        announced.then((message) =>
          openDataConnection({
            host: links.previous.peer.address,
            port: message.port,
            token: message.token,
            deadline,
            // Slots in the ring arena, so received chunks are added into ring buffers in place.
            reader: { slotBytes: DEFAULT_CHUNK_BYTES, slots: depth, maxFrameBytes, allocate: arenaBytes },
          }),
        ),
      ]);
      return new TcpRingChannel(toNext, fromPrevious.socket, fromPrevious.reader, { next: links.next.peerLabel, previous: links.previous.peerLabel });
    } finally {
      offer.close();
    }
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  private accept(link: Link<RingMessage>): void {
    this.incoming.accept(link);
  }

  /** Retries refused connections until the deadline: the next rank may still be starting. */
  private dial(next: RingAddress, deadline: number): Promise<Link<RingMessage>> {
    return dialWithRetry(
      (timeoutMs) => connect<RingMessage>({ ...linkOptions(this.options), host: next.host, port: next.port, timeoutMs }),
      deadline,
      (error) => new RingError('link', `rank ${this.options.rank} cannot reach the next rank at ${next.host}:${next.port}: ${error.message}`, { cause: error }),
    );
  }

  /** The first accepted link whose hello names the previous rank of this ring; others are closed. */
  private awaitPrevious(deadline: number): Promise<Link<RingMessage>> {
    const { rank, worldSize } = this.options;
    const expected = mod(rank - 1, worldSize);
    return this.incoming.first(
      deadline,
      async (link) => {
        const hello = await link.nextControl('ring-hello', { timeoutMs: Math.max(1, deadline - Date.now()) }).catch(() => undefined);
        if (hello && hello.rank === expected && hello.worldSize === worldSize && hello.epoch === this.epoch) return undefined;
        const said = hello ? `rank ${hello.rank} of ${hello.worldSize}, epoch ${hello.epoch}` : 'no ring-hello';
        this.log.warn({ peer: link.peerLabel, said }, `refusing ring link: expected rank ${expected} of ${worldSize}, epoch ${this.epoch}`);
        return `expected rank ${expected} of ${worldSize} (epoch ${this.epoch}), got ${said}`;
      },
      () => new RingError('timeout', `rank ${rank}: the previous rank (${expected}) did not connect in time`),
    );
  }
}

function linkOptions(options: RingNodeOptions) {
  const secret: SecretSource = {};
  if (options.secret !== undefined) secret.secret = options.secret;
  if (options.secretFile !== undefined) secret.secretFile = options.secretFile;
  if (options.env !== undefined) secret.env = options.env;
  return {
    ...secret,
    cluster: options.cluster,
    nodeId: options.nodeId ?? `${options.cluster}-rank${options.rank}`,
    role: 'ring',
    messages: ringMessages,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  };
}

function arenaBytes(bytes: number): Uint8Array {
  const { buffer, byteOffset } = allocateShared(bytes);
  return new Uint8Array(buffer, byteOffset, bytes);
}
