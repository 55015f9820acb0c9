import type { Logger } from '../../log/logger.js';
import { TransportError, protocolError } from '../errors.js';
import type { TransportLimits } from '../limits.js';
import { CloseCode, type LinkCloseInfo } from '../link/close-info.js';
import { Link, type PeerInfo } from '../link/link.js';
import { PendingWait } from '../link/pending-wait.js';
import type { PayloadWriter } from '../link/message-assembler.js';
import type { FrameSink, WireEndpoint } from '../link/wire-endpoint.js';
import type { ControlMessage, MessageRegistry } from '../messages/define-messages.js';
import type { Introduction, SessionMessage } from '../messages/session-messages.js';
import type { TensorHeader } from '../wire/tensor-header.js';
import { findMismatch, wrongSecret, type Refusal } from './refusal.js';
import { computeProof, newNonce, proofMatches } from './proof.js';

export interface HandshakeConfig<M extends ControlMessage> {
  cluster: string;
  nodeId: string;
  role: string;
  secret: Uint8Array | undefined;
  version: number;
  limits: TransportLimits;
  messages: MessageRegistry<M>;
  log: Logger;
}

/**
 * The mutual challenge–response that every link runs before anything else is accepted:
 *
 *   dialer   → hello     {version, cluster, nodeId, role, nonce_d, secured, window}
 *   listener → challenge {version, cluster, nodeId, role, nonce_l, secured, window}  (or refuse)
 *   dialer   → proof     HMAC(secret, "dialer"   | transcript)                       (or refuse)
 *   listener → welcome   HMAC(secret, "listener" | transcript)                       (or refuse)
 *
 * The dialer proves first, so a stranger probing a listener learns no MAC to attack offline. Each
 * side checks version, cluster and secret, and a refusal carries a reason the other side reports.
 * Until `welcome` is verified only session frames are accepted; the Link is created synchronously on
 * success, so frames arriving right behind the handshake are never dropped.
 */
abstract class Handshake<M extends ControlMessage> implements FrameSink {
  protected readonly nonce = newNonce();
  private readonly result: PendingWait<Link<M>>;
  private refusalError: TransportError | undefined;

  constructor(
    protected readonly endpoint: WireEndpoint,
    protected readonly config: HandshakeConfig<M>,
  ) {
    this.result = new PendingWait<Link<M>>(
      config.limits.authTimeoutMs,
      (ms) => `handshake with ${endpoint.remoteLabel} timed out after ${ms} ms`,
      () => endpoint.end({ code: CloseCode.authTimeout, reason: 'authentication timeout', byPeer: false }, true),
    );
    endpoint.sink = this;
  }

  get done(): Promise<Link<M>> {
    return this.result.promise;
  }

  protected introduction(type: 'hello' | 'challenge'): Introduction {
    return {
      type,
      protocolVersion: this.config.version,
      cluster: this.config.cluster,
      nodeId: this.config.nodeId,
      role: this.config.role,
      nonce: this.nonce,
      secured: this.config.secret !== undefined,
      receiveWindow: this.config.limits.receiveWindowBytes,
    };
  }

  protected checkIntroduction(theirs: Introduction): Refusal | undefined {
    return findMismatch(
      { protocolVersion: this.config.version, cluster: this.config.cluster, role: this.config.role, secured: this.config.secret !== undefined },
      theirs,
    );
  }

  /** We refuse the peer: tell it why (it reports `toPeer`), close, and fail with our own wording. */
  protected refuse(refusal: Refusal, peerLabel: string): void {
    const message = `refused ${peerLabel}: ${refusal.local}`;
    this.endpoint.peerWarnings.warn({ peer: peerLabel, code: refusal.code }, message);
    this.refusalError = new TransportError('refused', message);
    this.endpoint.sendSession({ type: 'refuse', code: refusal.code, reason: refusal.toPeer });
    this.endpoint.end({ code: CloseCode.refused, reason: message, byPeer: false }, true);
  }

  /** The peer refused us. */
  protected refusedByPeer(reason: string): void {
    const message = `refused by ${this.refusedByLabel()}: ${reason}`;
    this.endpoint.peerWarnings.warn({ peer: this.endpoint.remoteLabel }, message);
    this.refusalError = new TransportError('refused', message);
    this.endpoint.end({ code: CloseCode.refused, reason: message, byPeer: true }, true);
  }

  protected refusedByLabel(): string {
    return this.endpoint.remoteLabel;
  }

  protected succeed(theirs: Introduction): void {
    this.endpoint.markAuthenticated();
    const peer: PeerInfo = {
      nodeId: theirs.nodeId,
      role: theirs.role,
      cluster: theirs.cluster,
      address: this.endpoint.remote.address,
      port: this.endpoint.remote.port,
    };
    const link = new Link<M>({
      endpoint: this.endpoint,
      messages: this.config.messages,
      limits: this.config.limits,
      peer,
      peerReceiveWindow: Math.min(theirs.receiveWindow, 2 ** 31),
      log: this.config.log,
    });
    this.result.resolve(link);
  }

  protected mac(prover: 'dialer' | 'listener', dialer: Introduction, listener: Introduction): Buffer | null {
    return this.config.secret === undefined ? null : computeProof(this.config.secret, prover, dialer, listener);
  }

  protected macMatches(expected: Buffer | null, received: Uint8Array | null): boolean {
    if (expected === null) return received === null;
    return received !== null && proofMatches(expected, received);
  }

  abstract onSession(message: SessionMessage, version: number): void;

  onControl(): void {
    throw protocolError('control frame before authentication');
  }

  tensorDestination(_header: TensorHeader): PayloadWriter {
    throw protocolError('tensor frame before authentication');
  }

  onTensor(_header: TensorHeader): void {
    throw protocolError('tensor frame before authentication');
  }

  onEnded(info: LinkCloseInfo): void {
    this.result.reject(
      this.refusalError ?? new TransportError(info.code === CloseCode.authTimeout ? 'timeout' : 'closed', `handshake with ${this.endpoint.remoteLabel} failed: ${info.reason}`),
    );
  }
}

export class DialerHandshake<M extends ControlMessage> extends Handshake<M> {
  private state: 'challenge' | 'welcome' = 'challenge';
  private hello: Introduction | undefined;
  private challenge: Introduction | undefined;

  /** `dialedLabel` is the host:port the user asked for, used in the messages they will read. */
  constructor(
    endpoint: WireEndpoint,
    config: HandshakeConfig<M>,
    private readonly dialedLabel: string,
  ) {
    super(endpoint, config);
    this.hello = this.introduction('hello');
    endpoint.sendSession(this.hello as SessionMessage);
  }

  protected override refusedByLabel(): string {
    return this.dialedLabel;
  }

  onSession(message: SessionMessage): void {
    if (message.type === 'refuse') return this.refusedByPeer(message.reason);
    if (this.state === 'challenge' && message.type === 'challenge') {
      const mismatch = this.checkIntroduction(message);
      if (mismatch) return this.refuse(mismatch, this.dialedLabel);
      this.challenge = message;
      this.state = 'welcome';
      this.endpoint.sendSession({ type: 'proof', mac: this.mac('dialer', this.hello as Introduction, message) });
      return;
    }
    if (this.state === 'welcome' && message.type === 'welcome') {
      const challenge = this.challenge as Introduction;
      if (!this.macMatches(this.mac('listener', this.hello as Introduction, challenge), message.mac)) {
        return this.refuse(
          {
            code: 'secret',
            toPeer: 'its proof does not match this node\'s cluster secret',
            local: 'it failed to prove the cluster secret (different secret on that node, or an impostor)',
          },
          this.dialedLabel,
        );
      }
      return this.succeed(challenge);
    }
    throw protocolError(`unexpected '${message.type}' during the handshake (waiting for ${this.state})`);
  }
}

export class ListenerHandshake<M extends ControlMessage> extends Handshake<M> {
  private state: 'hello' | 'proof' = 'hello';
  private hello: Introduction | undefined;
  private challenge: Introduction | undefined;

  onSession(message: SessionMessage): void {
    const label = this.peerLabel();
    if (message.type === 'refuse') return this.refusedByPeer(message.reason);
    if (this.state === 'hello' && message.type === 'hello') {
      this.hello = message;
      // A dialer of another protocol version can still read this refusal: before authentication
      // session frames of any version are decoded (hello/challenge/refuse keep their shape forever).
      const mismatch = this.checkIntroduction(message);
      if (mismatch) return this.refuse(mismatch, this.peerLabel());
      this.challenge = this.introduction('challenge');
      this.state = 'proof';
      this.endpoint.sendSession(this.challenge as SessionMessage);
      return;
    }
    if (this.state === 'proof' && message.type === 'proof') {
      const hello = this.hello as Introduction;
      const challenge = this.challenge as Introduction;
      if (!this.macMatches(this.mac('dialer', hello, challenge), message.mac)) {
        return this.refuse(wrongSecret(this.config.role, this.config.cluster), label);
      }
      this.endpoint.sendSession({ type: 'welcome', mac: this.mac('listener', hello, challenge) });
      return this.succeed(hello);
    }
    throw protocolError(`unexpected '${message.type}' during the handshake (waiting for ${this.state})`);
  }

  private peerLabel(): string {
    const who = this.hello ? `${this.hello.nodeId} (${this.hello.role}) at ` : '';
    return `${who}${this.endpoint.remoteLabel}`;
  }
}
