import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Logger } from '../../log/logger.js';
import { TransportError, protocolError } from '../errors.js';
import type { LogLimiter } from '../log-limiter.js';
import { maxMessageBytes, type TransportLimits } from '../limits.js';
import type { SessionMessage } from '../messages/session-messages.js';
import { encodeControlFrame } from '../wire/control-codec.js';
import { FrameKind } from '../wire/frame-prefix.js';
import { encodeTensorFramePrefix } from '../wire/ws-tensor-framing.js';
import type { TensorHeader } from '../wire/tensor-header.js';

import { CloseCode, truncateCloseReason, type LinkCloseInfo } from './close-info.js';
import { MessageAssembler, type MessageSink, type PayloadWriter } from './message-assembler.js';
import { Opcode, WsFrameParser } from './ws-frame-parser.js';

/** Where decoded frames go: first the handshake, then the Link. Throwing a TransportError closes the link. */
export interface FrameSink {
  onSession(message: SessionMessage, version: number): void;
  /** An application control message, decoded from msgpack but not yet validated. */
  onControl(message: unknown): void;
  /** Where the payload of a tensor frame whose header just arrived goes (exactly its size). */
  tensorDestination(header: TensorHeader): PayloadWriter;
  /** That payload is complete. */
  onTensor(header: TensorHeader): void;
  /** Called exactly once, synchronously, when the endpoint ends for any reason. */
  onEnded(info: LinkCloseInfo): void;
}

export interface RemoteAddress {
  address: string;
  port: number;
}

const NOTHING = Buffer.alloc(0);

/** How long a graceful close may take before the socket is destroyed anyway. */
const CLOSE_GRACE_MS = 1_000;
/** Our frames are 1 or 2 fragments; a peer splitting a message into more is up to no good. */
const MAX_FRAGMENTS = 64;

/**
 * One WebSocket connection seen as ringpipe frames. ws does the HTTP upgrade and all sending; the
 * incoming bytes are read here (ws-frame-parser + message-assembler) so tensor payloads are copied
 * once, straight into their destination. Anything that breaks the protocol ends the connection
 * with a logged reason; nothing a peer sends can throw out of here.
 */
export class WireEndpoint {
  sink: FrameSink | undefined;
  private authenticated = false;
  private preAuthBytes = 0;
  private endInfo: LinkCloseInfo | undefined;
  private readonly parser: WsFrameParser;
  /** Clients mask their frames (with a zero key), servers must not. */
  private readonly masksFrames: boolean;

  constructor(
    readonly ws: WebSocket,
    readonly socket: Socket,
    readonly remote: RemoteAddress,
    readonly limits: TransportLimits,
    readonly version: number,
    readonly log: Logger,
    /** Peer-caused warnings, rate-limited (shared by all connections of a listener). */
    readonly peerWarnings: LogLimiter,
    isServerSide: boolean,
  ) {
    const maxMessage = maxMessageBytes(limits);
    const assembler = new MessageAssembler(
      { version, maxMessageBytes: maxMessage, maxControlBytes: limits.maxControlBytes, maxTensorBytes: limits.maxTensorBytes, maxFragments: MAX_FRAGMENTS },
      this.messageSink(),
    );
    this.parser = new WsFrameParser({ expectMasked: isServerSide, maxFramePayload: maxMessage }, assembler);
    this.masksFrames = !isServerSide;
    takeOverSocketReads(socket, (chunk) => this.onData(chunk));
    ws.on('error', (error) => this.onSocketError(error));
    ws.on('close', () => this.onSocketClosed());
  }

  get remoteLabel(): string {
    return `${this.remote.address}:${this.remote.port}`;
  }

  get ended(): LinkCloseInfo | undefined {
    return this.endInfo;
  }

  /** Bytes handed to ws but not yet written to the kernel. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Lifts the pre-authentication limits: from now on application and tensor frames are accepted. */
  markAuthenticated(): void {
    this.authenticated = true;
  }

  sendSession(message: SessionMessage, version = this.version): void {
    if (this.endInfo) return;
    this.ws.send(encodeControlFrame(FrameKind.session, version, message, this.limits.maxControlBytes));
  }

  /** Sends an already encoded application control frame (see encodeControlFrame). */
  sendControlFrame(frame: Buffer, onWritten: (error?: Error) => void): void {
    this.ws.send(frame, onWritten);
  }

  /**
   * Header and payload go out as two fragments of one WebSocket message, framed by us in a single
   * prefix buffer (see ws-tensor-framing.ts) and written under one cork: one writev, the payload
   * straight from the caller's memory. ws's sender is bypassed only for these frames; it writes
   * synchronously (no compression), so nothing of its own can be half-written in between.
   * `onWritten` (if given) is called once, by the socket, in write order. Returns true when the socket
   * holds no unwritten bytes afterwards: the kernel took the whole frame synchronously. Throws (no
   * callback) if the link is closing.
   */
  sendTensor(header: TensorHeader, payload: Buffer, onWritten: ((error?: Error | null) => void) | undefined): boolean {
    // A destroyed socket takes writes silently (no callback here to report it): refuse them first.
    if (this.ws.readyState !== this.ws.OPEN || this.socket.destroyed) throw new TransportError('closed', 'the link is closing');
    const prefix = encodeTensorFramePrefix(header, this.version, this.masksFrames);
    this.socket.cork();
    this.socket.write(prefix);
    if (onWritten) this.socket.write(payload, onWritten);
    else this.socket.write(payload);
    this.socket.uncork();
    return this.socket.writableLength === 0;
  }

  /** Calls `onWritten` once every byte written so far has reached the kernel (a zero-length write queued behind them). */
  afterPendingWrites(onWritten: (error?: Error | null) => void): void {
    this.socket.write(NOTHING, onWritten);
  }

  sendPing(): void {
    if (!this.endInfo) this.ws.ping();
  }

  /**
   * Ends the connection once. `graceful` sends a close frame with the reason (the peer learns why) and
   * destroys the socket if the peer does not answer in time; otherwise the socket is destroyed now.
   */
  end(info: LinkCloseInfo, graceful: boolean): void {
    if (this.endInfo) return;
    this.endInfo = info;
    try {
      if (graceful && this.ws.readyState === this.ws.OPEN) {
        if (info.code >= 1000 && info.code !== 1005 && info.code !== 1006) this.ws.close(info.code, truncateCloseReason(info.reason));
        else this.ws.close();
        setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
      } else {
        this.ws.terminate();
      }
    } catch (error) {
      this.log.debug({ err: error }, 'error while closing websocket');
      this.socket.destroy();
    }
    this.sink?.onEnded(info);
  }

  /** Ends the link because the peer broke the protocol; logs what it did. */
  violation(error: unknown): void {
    if (this.endInfo) return;
    const message = error instanceof Error ? error.message : String(error);
    const reason = `protocol violation: ${message}`;
    this.peerWarnings.warn({ peer: this.remoteLabel, reason }, 'closing link');
    this.end({ code: CloseCode.protocolViolation, reason, byPeer: false }, true);
  }

  private messageSink(): MessageSink {
    const sink = (): FrameSink => {
      if (!this.sink) throw protocolError('frame arrived while the link was not ready');
      return this.sink;
    };
    return {
      isAuthenticated: () => this.authenticated,
      onSession: (message, version) => sink().onSession(message, version),
      onControl: (message) => sink().onControl(message),
      tensorDestination: (header) => sink().tensorDestination(header),
      onTensor: (header) => sink().onTensor(header),
      onControlFrame: (opcode, payload) => this.onControlFrame(opcode, payload),
    };
  }

  /** Asked by the parser between frames (one function, not a closure per read). */
  private readonly hasEnded = (): boolean => this.endInfo !== undefined;

  private onData(chunk: Buffer): void {
    if (this.endInfo) return;
    // Counted, but judged after parsing: the chunk that completes the handshake may also carry the
    // first frames sent right behind it, which are not pre-authentication bytes.
    if (!this.authenticated) this.preAuthBytes += chunk.length;
    try {
      this.parser.push(chunk, this.hasEnded);
      if (!this.authenticated && this.preAuthBytes > this.limits.maxPreAuthBytes) {
        throw protocolError(`sent ${this.preAuthBytes} bytes before authenticating (limit ${this.limits.maxPreAuthBytes})`);
      }
    } catch (error) {
      if (error instanceof TransportError) {
        this.violation(error);
      } else {
        // A bug on our side, not the peer's: still close the link rather than keep a confused state.
        this.log.error({ err: error, peer: this.remoteLabel }, 'internal error while handling a frame');
        this.violation(new Error(`internal error: ${(error as Error).message}`));
      }
    }
  }

  private onControlFrame(opcode: number, payload: Buffer): void {
    if (opcode === Opcode.ping) {
      if (!this.endInfo && this.ws.readyState === this.ws.OPEN) this.ws.pong(payload);
      return;
    }
    if (opcode !== Opcode.close) return; // pong: liveness is tracked from bytes read (heartbeat.ts)
    if (payload.length === 1) throw protocolError('close frame with a 1-byte payload');
    const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    const said = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
    if (this.endInfo) {
      // We started the closing handshake and this is the peer's answer: done.
      this.ws.terminate();
      return;
    }
    const reason = `closed by peer${said ? `: ${said}` : ''} (code ${code})`;
    this.end({ code, reason, byPeer: true }, true);
  }

  private onSocketError(error: Error): void {
    if (this.endInfo) return;
    this.end({ code: CloseCode.abnormal, reason: `socket error: ${error.message}`, byPeer: true }, false);
  }

  private onSocketClosed(): void {
    if (this.endInfo) return;
    this.end({ code: CloseCode.abnormal, reason: 'connection lost (peer process exited or network dropped)', byPeer: true }, false);
  }
}

/**
 * ws reads the socket through one 'data' listener feeding its receiver; we replace that listener
 * with ours (ws keeps the upgrade, the sender and the close bookkeeping). Called synchronously from
 * the 'open' / handleUpgrade callback, before any frame data has been emitted.
 */
function takeOverSocketReads(socket: Socket, onData: (chunk: Buffer) => void): void {
  const wsListeners = socket.listeners('data');
  if (wsListeners.length !== 1) {
    throw new Error(`expected exactly one ws data listener on the socket, found ${wsListeners.length} (incompatible ws version?)`);
  }
  socket.removeListener('data', wsListeners[0] as (chunk: Buffer) => void);
  socket.on('data', onData);
}
