import { EventEmitter } from 'node:events';
import type { Logger } from '../../log/logger.js';
import { TransportError, protocolError } from '../errors.js';
import type { TransportLimits } from '../limits.js';
import type { ControlMessage, MessageRegistry } from '../messages/define-messages.js';
import type { SessionMessage } from '../messages/session-messages.js';
import { encodeControlFrame } from '../wire/control-codec.js';
import { dtypeOf, type TensorArray } from '../wire/dtype.js';
import { FrameKind } from '../wire/frame-prefix.js';
import { checkTensorHeader, tensorPayloadBytes, type TensorHeader } from '../wire/tensor-header.js';
import { CloseCode, type LinkCloseInfo } from './close-info.js';
import { ControlInbox } from './control-inbox.js';
import { DeadlineQueue } from './deadline-queue.js';
import { ReceiveWindow, SendCredit } from './flow-control.js';
import { Heartbeat } from './heartbeat.js';
import { OrderedSender } from './ordered-sender.js';
import { checkTimeout } from './pending-wait.js';
import { TensorInbox, type TensorFrame } from './tensor-inbox.js';
import type { FrameSink, WireEndpoint } from './wire-endpoint.js';

/** Who is at the other end, as proven by the handshake (address as seen on the socket). */
export interface PeerInfo {
  nodeId: string;
  role: string;
  cluster: string;
  address: string;
  port: number;
}

/** What the sender supplies; `length` and `dtype` come from the data array itself. */
export interface TensorSendHeader {
  epoch: number;
  step: number;
  tensorId: number;
  /** First element of this frame within the whole tensor (default 0). */
  offset?: number;
  /** Elements in the whole tensor (default offset + data.length). */
  totalLength?: number;
}

export interface WaitOptions {
  /** Defaults to limits.defaultWaitTimeoutMs. Infinity is allowed; the link dying still ends the wait. */
  timeoutMs?: number;
}

export interface NextTensorOptions<T extends TensorArray> extends WaitOptions {
  /**
   * Reusable buffer for the whole tensor: the frame's elements are copied to
   * `into[offset, offset + length)` and `data` is that sub-array. Without it, `data` is a view over
   * the received bytes (copied only if misaligned), valid until you drop it.
   */
  into?: T;
}

export interface LinkInternals<M extends ControlMessage> {
  endpoint: WireEndpoint;
  messages: MessageRegistry<M>;
  limits: TransportLimits;
  peer: PeerInfo;
  peerReceiveWindow: number;
  log: Logger;
}

export interface LinkEvents {
  close: [LinkCloseInfo];
}

/**
 * An authenticated connection to one peer: ordered control messages, flow-controlled tensor frames,
 * heartbeats. Obtained from `connect()` or a `listen()` server, never constructed directly.
 */
export class Link<M extends ControlMessage = ControlMessage> extends EventEmitter<LinkEvents> {
  readonly peer: PeerInfo;
  /** Resolves (never rejects) when the link has closed, with the reason. */
  readonly closed: Promise<LinkCloseInfo>;

  private readonly endpoint: WireEndpoint;
  // Typed loosely on purpose: with M in these private fields, Link<Specific> would not be assignable
  // to Link<ControlMessage>. The public methods restore M.
  private readonly messages: MessageRegistry<ControlMessage>;
  private readonly limits: TransportLimits;
  private readonly log: Logger;
  private readonly controlInbox: ControlInbox<ControlMessage>;
  private readonly tensorInbox: TensorInbox;
  private readonly receiveWindow: ReceiveWindow;
  private readonly sendCredit: SendCredit;
  private readonly sender: OrderedSender;
  private readonly heartbeat: Heartbeat;
  /** One timer for every nextControl/nextTensor wait of this link. */
  private readonly deadlines = new DeadlineQueue();
  private closeInfoValue: LinkCloseInfo | undefined;
  private resolveClosed!: (info: LinkCloseInfo) => void;

  constructor(internals: LinkInternals<M>) {
    super();
    this.endpoint = internals.endpoint;
    this.messages = internals.messages;
    this.limits = internals.limits;
    this.peer = internals.peer;
    this.log = internals.log;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.controlInbox = new ControlInbox<ControlMessage>(this.limits.maxQueuedControlMessages, this.log, this.deadlines);
    this.receiveWindow = new ReceiveWindow(this.limits.receiveWindowBytes, this.limits.maxTensorBytes, (bytes) =>
      this.endpoint.sendSession({ type: 'credit', bytes }),
    );
    this.tensorInbox = new TensorInbox(
      (bytes) => this.receiveWindow.consumed(bytes),
      (timeoutMs) => `timed out after ${timeoutMs} ms waiting for a tensor frame from ${this.peerLabel}`,
      this.deadlines,
    );
    this.sendCredit = new SendCredit(internals.peerReceiveWindow, internals.peerReceiveWindow);
    this.sender = new OrderedSender(
      this.endpoint,
      this.sendCredit,
      this.limits.sendHighWaterBytes,
      (timeoutMs) =>
        `sendTensor to ${this.peerLabel} timed out after ${timeoutMs} ms: the peer is not reading (flow-control window full) or the network is too slow`,
    );
    this.heartbeat = new Heartbeat(this.endpoint, this.limits.heartbeatIntervalMs, this.limits.heartbeatTimeoutMs, (silentMs) =>
      this.endpoint.end(
        { code: CloseCode.heartbeatTimeout, reason: `heartbeat timeout: nothing heard from the peer for ${silentMs} ms`, byPeer: false },
        false,
      ),
    );
    const sink: FrameSink = {
      onSession: (message) => this.receiveSession(message),
      onControl: (message) => this.controlInbox.deliver(this.messages.parse(message)),
      tensorDestination: (header) => {
        // Counted when the header arrives, before any payload is stored: a peer ignoring flow
        // control is stopped before it can make us allocate.
        this.receiveWindow.received(tensorPayloadBytes(header));
        return this.tensorInbox.destinationFor(header);
      },
      onTensor: (header) => this.tensorInbox.complete(header),
      onEnded: (info) => this.ended(info),
    };
    this.endpoint.sink = sink;
    this.heartbeat.start();
  }

  /** "node-2 (peer) at 10.0.0.5:41234", for logs and error messages. */
  get peerLabel(): string {
    return `${this.peer.nodeId} (${this.peer.role}) at ${this.peer.address}:${this.peer.port}`;
  }

  get isOpen(): boolean {
    return this.closeInfoValue === undefined;
  }

  /** When anything (data, ping, pong) last arrived from the peer, as Date.now(); within a heartbeat tick. */
  get lastHeardAt(): number {
    return this.heartbeat.lastHeard;
  }

  /** Why the link closed, once it has. */
  get closeInfo(): LinkCloseInfo | undefined {
    return this.closeInfoValue;
  }

  /** Bytes accepted by the socket layer but not yet written to the kernel. */
  get bufferedAmount(): number {
    return this.endpoint.bufferedAmount;
  }

  /** Tensor bytes received but not yet taken with nextTensor (at most the receive window). */
  get queuedTensorBytes(): number {
    return this.tensorInbox.queuedBytes;
  }

  /**
   * Sends a control message now. Control traffic is never held back by tensor back-pressure (a
   * message that would unblock a stalled reader must get through), so it may overtake tensors whose
   * sendTensor is still waiting; await those first if the order matters. Throws a `usage` error at
   * once if the message does not match the link's registry; resolves when written to the kernel.
   */
  sendControl(message: M): Promise<void> {
    this.throwIfClosed();
    let frame: Buffer;
    try {
      this.messages.parse(message);
      frame = encodeControlFrame(FrameKind.control, this.endpoint.version, message, this.limits.maxControlBytes);
    } catch (error) {
      throw new TransportError('usage', `cannot send control message: ${(error as Error).message}`);
    }
    return new Promise<void>((resolve, reject) => {
      this.endpoint.sendControlFrame(frame, (error) => {
        if (error) reject(this.closeInfoValue ? this.closedError('send') : new TransportError('closed', `sending '${message.type}' failed: ${error.message}`));
        else resolve();
      });
    });
  }

  /**
   * Sends one tensor frame (at most limits.maxTensorBytes of payload; split bigger tensors using
   * `offset`). Waits for flow-control credit and for the socket to drain below the high-water mark,
   * then resolves once the bytes are written to the kernel: only then may `data` be reused.
   */
  sendTensor(header: TensorSendHeader, data: TensorArray, options: WaitOptions = {}): Promise<void> {
    this.throwIfClosed();
    const dtype = dtypeOf(data);
    if (dtype === undefined) throw new TransportError('usage', 'sendTensor data must be a Float32Array, Int32Array or Uint8Array');
    const offset = header.offset ?? 0;
    const full: TensorHeader = {
      epoch: header.epoch,
      step: header.step,
      tensorId: header.tensorId,
      offset,
      length: data.length,
      totalLength: header.totalLength ?? offset + data.length,
      dtype,
    };
    const problem = checkTensorHeader(full);
    if (problem !== undefined) throw new TransportError('usage', problem);
    if (data.byteLength > this.limits.maxTensorBytes) {
      throw new TransportError(
        'usage',
        `tensor frame of ${data.byteLength} bytes exceeds maxTensorBytes ${this.limits.maxTensorBytes}: split it into chunks with header.offset`,
      );
    }
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.limits.defaultWaitTimeoutMs, 'sendTensor');
    // A Buffer view (no copy): socket.write would otherwise wrap a plain Uint8Array in one itself.
    const payload = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return this.sender.send(full, payload, Date.now() + timeoutMs, timeoutMs);
  }

  /** The next control message of `type` (queued ones first). Rejects on timeout or when the link closes. */
  nextControl<T extends M['type']>(type: T, options: WaitOptions = {}): Promise<Extract<M, { type: T }>> {
    if (!this.messages.types.has(type)) {
      return Promise.reject(new TransportError('usage', `nextControl: '${type}' is not a message type of this link`));
    }
    if (this.closeInfoValue) return Promise.reject(this.closedError(`wait for a '${type}' message`));
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.limits.defaultWaitTimeoutMs, 'nextControl');
    return this.controlInbox.next(type, timeoutMs, (ms) => `timed out after ${ms} ms waiting for a '${type}' message from ${this.peerLabel}`) as Promise<
      Extract<M, { type: T }>
    >;
  }

  /** Calls `handler` for every message of `type` (including ones already queued). Returns an unsubscribe function. */
  onControl<T extends M['type']>(type: T, handler: (message: Extract<M, { type: T }>) => void): () => void {
    return this.controlInbox.subscribe(type, handler as (message: ControlMessage) => void);
  }

  /** The next tensor frame, in arrival order. Rejects on timeout or when the link closes. */
  nextTensor<T extends TensorArray = TensorArray>(options: NextTensorOptions<T> = {}): Promise<TensorFrame<T>> {
    if (this.closeInfoValue) return Promise.reject(this.closedError('wait for a tensor frame'));
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.limits.defaultWaitTimeoutMs, 'nextTensor');
    try {
      return this.tensorInbox.next(options.into, timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Closes the link; the peer sees `reason`. Pending waits and sends reject. */
  close(reason = 'closed by the application'): void {
    this.endpoint.end({ code: CloseCode.normal, reason, byPeer: false }, true);
  }

  // ---- called by the wire endpoint ------------------------------------------------------------

  private receiveSession(message: SessionMessage): void {
    if (message.type !== 'credit') throw protocolError(`unexpected '${message.type}' session message after the handshake`);
    this.sendCredit.grant(message.bytes);
    this.sender.wake();
  }

  private ended(info: LinkCloseInfo): void {
    if (this.closeInfoValue) return;
    this.closeInfoValue = info;
    this.heartbeat.stop();
    const error = new TransportError('closed', `link to ${this.peerLabel} closed: ${info.reason}`);
    this.sender.fail(error);
    this.controlInbox.failAll(error);
    this.tensorInbox.failAll(error);
    this.deadlines.clear();
    const level = info.code === CloseCode.normal || info.code === CloseCode.goingAway ? 'info' : 'warn';
    this.log[level]({ peer: this.peerLabel, code: info.code, reason: info.reason, byPeer: info.byPeer }, 'link closed');
    this.resolveClosed(info);
    this.emit('close', info);
  }

  private throwIfClosed(): void {
    if (this.closeInfoValue) throw this.closedError('send');
  }

  private closedError(action: string): TransportError {
    return new TransportError('closed', `link to ${this.peerLabel} is closed (${this.closeInfoValue?.reason}); cannot ${action}`);
  }
}
