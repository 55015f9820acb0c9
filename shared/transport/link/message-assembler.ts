import { protocolError } from '../errors.js';
import { sessionMessages, type SessionMessage } from '../messages/session-messages.js';
import { decodeControlBody } from '../wire/control-codec.js';
import { FRAME_PREFIX_BYTES, FrameKind, readFramePrefix } from '../wire/frame-prefix.js';
import { TENSOR_HEADER_BYTES, checkPayloadLength, parseTensorHeader, tensorPayloadBytes, type TensorHeader } from '../wire/tensor-header.js';
import { Opcode, type FrameParserSink } from './ws-frame-parser.js';

/** Receives a tensor payload piece by piece, in order. */
export interface PayloadWriter {
  readonly byteLength: number;
  /**
   * The next payload bytes: `chunk[start, end)`. The chunk is one of the socket's read buffers,
   * which Node allocates anew for every read (sockets are never given a reusable `onread` buffer
   * here), so a view of it may be kept instead of copied: the tensor inbox does that for a frame
   * nobody waits for yet.
   */
  write(chunk: Buffer, start: number, end: number): void;
}

/** Where assembled messages go (the wire endpoint, which forwards to the handshake or the Link). */
export interface MessageSink {
  /** Before authentication only session frames (of any version) are accepted. */
  isAuthenticated(): boolean;
  onSession(message: SessionMessage, version: number): void;
  onControl(message: unknown): void;
  /**
   * A tensor frame's header has arrived: returns where its payload goes, exactly
   * tensorPayloadBytes(header) long. Throwing (e.g. flow-control violation) closes the link.
   */
  tensorDestination(header: TensorHeader): PayloadWriter;
  /** The whole payload has been written. */
  onTensor(header: TensorHeader): void;
  onControlFrame(opcode: number, payload: Buffer): void;
}

export interface AssemblerLimits {
  version: number;
  maxMessageBytes: number;
  maxControlBytes: number;
  maxTensorBytes: number;
  maxFragments: number;
}

/**
 * Turns WebSocket data frames into ringpipe messages as their bytes stream in. The first bytes of a
 * message say its kind; a tensor's payload is then written straight into the destination the Link
 * chooses (the caller's buffer when one is waiting), so each payload byte is copied exactly once.
 * Every size is checked against the limits before anything is buffered.
 */
export class MessageAssembler implements FrameParserSink {
  private inMessage = false;
  private fragments = 0;
  private declaredBytes = 0;
  private kind: FrameKind | undefined;
  private version = 0;
  private readonly head = Buffer.alloc(TENSOR_HEADER_BYTES);
  private headFilled = 0;
  private controlChunks: Buffer[] = [];
  private tensorHeader: TensorHeader | undefined;
  private destination: PayloadWriter | undefined;
  private destinationFilled = 0;

  constructor(
    private readonly limits: AssemblerLimits,
    private readonly sink: MessageSink,
  ) {}

  dataFrameStart(opcode: number, _fin: boolean, length: number): void {
    if (opcode === Opcode.text) throw protocolError('text frame (ringpipe sends only binary frames)');
    if (opcode === Opcode.binary) {
      if (this.inMessage) throw protocolError('new message started before the previous one was finished');
      this.startMessage();
    } else if (!this.inMessage) {
      throw protocolError('continuation frame without a message to continue');
    }
    if (++this.fragments > this.limits.maxFragments) throw protocolError(`message split into more than ${this.limits.maxFragments} fragments`);
    this.declaredBytes += length;
    if (this.declaredBytes > this.limits.maxMessageBytes) {
      throw protocolError(`message of more than ${this.limits.maxMessageBytes} bytes (maxPayload)`);
    }
    this.checkDeclaredSize();
  }

  dataBytes(chunk: Buffer, start: number, end: number): void {
    let at = start;
    if (this.kind === undefined || (this.kind === FrameKind.tensor && this.tensorHeader === undefined)) {
      at = this.fillHead(chunk, at, end);
      if (at === end) return;
    }
    const length = end - at;
    if (this.kind === FrameKind.tensor) {
      const destination = this.destination as PayloadWriter;
      if (this.destinationFilled + length > destination.byteLength) {
        throw protocolError(`tensor payload is longer than the ${destination.byteLength} bytes its header announced`);
      }
      destination.write(chunk, at, end);
      this.destinationFilled += length;
    } else {
      // Control messages are small: keep a copy of each piece and decode at the end.
      this.controlChunks.push(Buffer.from(chunk.subarray(at, end)));
    }
  }

  dataFrameEnd(fin: boolean): void {
    if (!fin) return;
    this.inMessage = false;
    if (this.kind === undefined) throw protocolError(`frame of ${this.headFilled} bytes is shorter than the ${FRAME_PREFIX_BYTES}-byte prefix`);
    if (this.kind === FrameKind.tensor) {
      const header = this.tensorHeader;
      if (header === undefined) throw protocolError(`tensor frame of ${this.headFilled} bytes is shorter than the ${TENSOR_HEADER_BYTES}-byte header`);
      checkPayloadLength(header, this.destinationFilled);
      this.tensorHeader = undefined;
      this.destination = undefined;
      this.sink.onTensor(header);
      return;
    }
    const frame = Buffer.concat([this.head.subarray(0, this.headFilled), ...this.controlChunks]);
    this.controlChunks = [];
    const body = decodeControlBody(frame, this.limits.maxControlBytes);
    if (this.kind === FrameKind.session) this.sink.onSession(sessionMessages.parse(body), this.version);
    else this.sink.onControl(body);
  }

  controlFrame(opcode: number, payload: Buffer): void {
    this.sink.onControlFrame(opcode, payload);
  }

  private startMessage(): void {
    this.inMessage = true;
    this.fragments = 0;
    this.declaredBytes = 0;
    this.kind = undefined;
    this.headFilled = 0;
    this.controlChunks = [];
    this.tensorHeader = undefined;
    this.destination = undefined;
    this.destinationFilled = 0;
  }

  /**
   * Copies the first bytes of a message (from `chunk[start, end)`) until its kind (4 bytes) or
   * tensor header (32) is known; returns where the rest begins. Byte by byte: at most 32 bytes,
   * and no view allocated per frame.
   */
  private fillHead(chunk: Buffer, start: number, end: number): number {
    let offset = start;
    const head = this.head;
    while (offset < end && this.headFilled < this.headWanted()) {
      const stop = Math.min(offset + this.headWanted() - this.headFilled, end);
      while (offset < stop) head[this.headFilled++] = chunk[offset++] as number;
      if (this.kind === undefined && this.headFilled === FRAME_PREFIX_BYTES) this.learnKind();
    }
    if (this.kind === FrameKind.tensor && this.tensorHeader === undefined && this.headFilled === TENSOR_HEADER_BYTES) {
      const header = parseTensorHeader(this.head, this.limits.maxTensorBytes);
      this.tensorHeader = header;
      this.checkDeclaredSize();
      this.destination = this.sink.tensorDestination(header);
      if (this.destination.byteLength !== tensorPayloadBytes(header)) throw new Error('tensor destination has the wrong size');
    }
    return offset;
  }

  /** The prefix tells the kind; a tensor also needs its whole header before the payload. */
  private headWanted(): number {
    return this.kind === FrameKind.tensor ? TENSOR_HEADER_BYTES : FRAME_PREFIX_BYTES;
  }

  private learnKind(): void {
    const prefix = readFramePrefix(this.head); // reads the first FRAME_PREFIX_BYTES only
    const authenticated = this.sink.isAuthenticated();
    if (!authenticated && prefix.kind !== FrameKind.session) {
      throw protocolError(`${prefix.kind === FrameKind.tensor ? 'tensor' : 'control'} frame before authentication`);
    }
    // Before authentication any version may speak, so that a hello from another version can be
    // answered with a clear refusal; after it, every frame must carry the negotiated version.
    if (authenticated && prefix.version !== this.limits.version) {
      throw protocolError(`frame of protocol version ${prefix.version}, the link speaks ${this.limits.version}`);
    }
    this.kind = prefix.kind;
    this.version = prefix.version;
    this.checkDeclaredSize();
  }

  /** Rejects a message as soon as its announced size is known to break a limit. */
  private checkDeclaredSize(): void {
    if (this.kind === FrameKind.session || this.kind === FrameKind.control) {
      if (this.declaredBytes - FRAME_PREFIX_BYTES > this.limits.maxControlBytes) {
        throw protocolError(`control message of ${this.declaredBytes - FRAME_PREFIX_BYTES} bytes exceeds maxControlBytes ${this.limits.maxControlBytes}`);
      }
    } else if (this.kind === FrameKind.tensor && this.tensorHeader) {
      const expected = tensorPayloadBytes(this.tensorHeader);
      if (this.declaredBytes - TENSOR_HEADER_BYTES > expected) {
        throw protocolError(`tensor header says ${expected} payload bytes but the frames carry ${this.declaredBytes - TENSOR_HEADER_BYTES}`);
      }
    }
  }
}
