import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Logger } from '../../log/logger.js';
import type { LogLimiter } from '../log-limiter.js';
import { TransportError, protocolError } from '../errors.js';
import type { TransportLimits } from '../limits.js';
import { sessionMessages, type SessionMessage } from '../messages/session-messages.js';
import { decodeControlBody, encodeControlFrame } from '../wire/control-codec.js';
import { FRAME_PREFIX_BYTES, FrameKind, readFramePrefix } from '../wire/frame-prefix.js';
import { TENSOR_HEADER_BYTES, decodeTensorHeader, type TensorHeader } from '../wire/tensor-header.js';
import { CloseCode, truncateCloseReason, type LinkCloseInfo } from './close-info.js';

/** Where decoded frames go: first the handshake, then the Link. Throwing a TransportError closes the link. */
export interface FrameSink {
  onSession(message: SessionMessage, version: number): void;
  /** An application control message, decoded from msgpack but not yet validated. */
  onControl(message: unknown): void;
  onTensor(header: TensorHeader, payload: Uint8Array): void;
  /** Called exactly once, synchronously, when the endpoint ends for any reason. */
  onEnded(info: LinkCloseInfo): void;
}

export interface RemoteAddress {
  address: string;
  port: number;
}

/** How long a graceful close may take before the socket is destroyed anyway. */
const CLOSE_GRACE_MS = 1_000;

/**
 * One WebSocket connection seen as ringpipe frames: decodes and validates every incoming frame and
 * dispatches it to the current sink; encodes outgoing frames. Anything that breaks the protocol
 * ends the connection with a logged reason; nothing a peer sends can throw out of here.
 */
export class WireEndpoint {
  sink: FrameSink | undefined;
  private authenticated = false;
  private preAuthBytes = 0;
  private endInfo: LinkCloseInfo | undefined;
  private readonly countPreAuthBytes = (chunk: Buffer): void => this.onPreAuthData(chunk);

  constructor(
    readonly ws: WebSocket,
    readonly socket: Socket,
    readonly remote: RemoteAddress,
    readonly limits: TransportLimits,
    readonly version: number,
    readonly log: Logger,
    /** Peer-caused warnings, rate-limited (shared by all connections of a listener). */
    readonly peerWarnings: LogLimiter,
  ) {
    // 'fragments' hands us each frame's payload as ws read it: no concat copy of header + payload.
    ws.binaryType = 'fragments';
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer[], isBinary));
    ws.on('error', (error) => this.onWsError(error));
    ws.on('close', (code, reason) => this.onWsClose(code, reason));
    socket.on('data', this.countPreAuthBytes);
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
    this.socket.off('data', this.countPreAuthBytes);
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
   * Header and payload go out as two fragments of one WebSocket message, so the payload is written
   * straight from the caller's memory (zero mask, no concat). Both sends happen in the same tick, so
   * no other message can slip between the fragments.
   */
  sendTensor(header: Buffer, payload: Uint8Array, onWritten: (error?: Error) => void): void {
    this.ws.send(header, { binary: true, fin: false });
    this.ws.send(payload, { binary: true, fin: true }, onWritten);
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
    this.socket.off('data', this.countPreAuthBytes);
    try {
      if (graceful && this.ws.readyState === this.ws.OPEN) {
        this.ws.close(info.code, truncateCloseReason(info.reason));
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

  private onPreAuthData(chunk: Buffer): void {
    this.preAuthBytes += chunk.length;
    if (this.preAuthBytes > this.limits.maxPreAuthBytes && !this.authenticated) {
      this.violation(
        protocolError(`sent ${this.preAuthBytes} bytes before authenticating (limit ${this.limits.maxPreAuthBytes})`),
      );
    }
  }

  private onMessage(fragments: Buffer[], isBinary: boolean): void {
    if (this.endInfo) return;
    try {
      if (!isBinary) throw protocolError('text frame (ringpipe sends only binary frames)');
      this.dispatch(fragments);
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

  private dispatch(fragments: Buffer[]): void {
    const first = fragments[0];
    // Our own tensor frames arrive as [header, payload]; anything else is joined (a copy, but rare).
    const whole = fragments.length === 1 && first ? first : undefined;
    const head = whole ?? (first && first.length >= TENSOR_HEADER_BYTES ? first : Buffer.concat(fragments));
    const prefix = readFramePrefix(head);
    const sink = this.sink;
    if (!sink) throw protocolError('frame arrived while the link was not ready');

    if (!this.authenticated && prefix.kind !== FrameKind.session) {
      throw protocolError(`${prefix.kind === FrameKind.tensor ? 'tensor' : 'control'} frame before authentication`);
    }
    // Before authentication any version may speak, so that a hello from another version can be
    // answered with a clear refusal; after it, every frame must carry the negotiated version.
    if (this.authenticated && prefix.version !== this.version) {
      throw protocolError(`frame of protocol version ${prefix.version}, the link speaks ${this.version}`);
    }

    if (prefix.kind === FrameKind.tensor) {
      this.dispatchTensor(sink, fragments, head);
      return;
    }
    const frame = whole ?? (head.length === totalLength(fragments) ? head : Buffer.concat(fragments));
    const body = decodeControlBody(frame, this.limits.maxControlBytes);
    if (prefix.kind === FrameKind.session) {
      sink.onSession(sessionMessages.parse(body), prefix.version);
    } else {
      sink.onControl(body);
    }
  }

  private dispatchTensor(sink: FrameSink, fragments: Buffer[], head: Buffer): void {
    let headerBytes: Uint8Array;
    let payload: Uint8Array;
    const [first, second] = fragments;
    if (fragments.length === 2 && first && second && first.length === TENSOR_HEADER_BYTES) {
      headerBytes = first;
      payload = second;
    } else {
      const frame = fragments.length === 1 ? head : head.length === totalLength(fragments) ? head : Buffer.concat(fragments);
      headerBytes = frame.subarray(0, TENSOR_HEADER_BYTES);
      payload = frame.subarray(TENSOR_HEADER_BYTES);
    }
    const header = decodeTensorHeader(headerBytes, payload.length, this.limits.maxTensorBytes);
    sink.onTensor(header, payload);
  }

  private onWsError(error: Error & { code?: string }): void {
    // ws reports malformed frames (bad opcode, oversize payload, bad UTF-8…) here and then closes.
    if (this.endInfo) return;
    const code = error.code ?? '';
    const reason = code.startsWith('WS_ERR_') ? `protocol violation: ${error.message} (${code})` : `socket error: ${error.message}`;
    this.peerWarnings.warn({ peer: this.remoteLabel, reason }, 'closing link');
    this.end({ code: code.startsWith('WS_ERR_') ? CloseCode.protocolViolation : CloseCode.abnormal, reason, byPeer: !code.startsWith('WS_ERR_') }, false);
  }

  private onWsClose(code: number, reasonBytes: Buffer): void {
    if (this.endInfo) return;
    const said = reasonBytes.toString('utf8');
    const reason =
      code === CloseCode.abnormal
        ? 'connection lost (peer process exited or network dropped)'
        : `closed by peer${said ? `: ${said}` : ''} (code ${code})`;
    this.end({ code, reason, byPeer: true }, false);
  }
}

function totalLength(fragments: Buffer[]): number {
  let total = 0;
  for (const fragment of fragments) total += fragment.length;
  return total;
}

export { FRAME_PREFIX_BYTES };
