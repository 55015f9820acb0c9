import { protocolError } from '../errors.js';

/** WebSocket opcodes (RFC 6455 §5.2). */
export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** What the parser reports, in stream order. Payload slices are views into the socket's chunks. */
export interface FrameParserSink {
  /** A data frame (text, binary or continuation) begins; its `length` payload bytes follow. */
  dataFrameStart(opcode: number, fin: boolean, length: number): void;
  /**
   * Unmasked payload bytes of the current data frame: `chunk[start, end)`, passed as offsets so the
   * hot path creates no view per piece (Buffer.copy takes offsets). The chunk is the socket's.
   */
  dataBytes(chunk: Buffer, start: number, end: number): void;
  dataFrameEnd(fin: boolean): void;
  /** A complete control frame (close, ping, pong); payload ≤ 125 bytes, already copied. */
  controlFrame(opcode: number, payload: Buffer): void;
}

export interface FrameParserOptions {
  /** Frames from a client must be masked, frames from a server must not (RFC 6455 §5.1). */
  expectMasked: boolean;
  /** Largest frame payload accepted, checked from the header before any payload is buffered. */
  maxFramePayload: number;
}

/**
 * RFC 6455 frame parser that streams data-frame payloads straight out of the socket's chunks, so a
 * tensor can be copied once, from the kernel's bytes into its destination. ws's own receiver would
 * first gather each frame into a freshly allocated buffer (an extra copy, into cold memory); this is
 * why the link reads the socket itself and uses ws for the upgrade and for sending only.
 * Every violation throws a `protocol` TransportError.
 */
export class WsFrameParser {
  private readonly headerBytes = Buffer.alloc(14);
  private headerFilled = 0;
  private state: 'header' | 'payload' = 'header';
  private opcode = 0;
  private fin = false;
  private remaining = 0;
  private readonly mask = Buffer.alloc(4);
  private masked = false;
  private maskOffset = 0;
  private controlPayload: Buffer | undefined;
  private controlFilled = 0;

  constructor(
    private readonly options: FrameParserOptions,
    private readonly sink: FrameParserSink,
  ) {}

  /** Parses `chunk`; `stopped` is checked between frames so nothing is handled after the link ended. */
  push(chunk: Buffer, stopped: () => boolean): void {
    let offset = 0;
    while (offset < chunk.length && !stopped()) {
      if (this.state === 'header') {
        offset = this.readHeader(chunk, offset);
      } else {
        offset = this.readPayload(chunk, offset);
      }
    }
  }

  /** Copies header bytes until the header is complete; returns the new offset in `chunk`. */
  private readHeader(chunk: Buffer, offset: number): number {
    const header = this.headerBytes;
    // The first two bytes say how long the header is.
    while (this.headerFilled < 2 && offset < chunk.length) header[this.headerFilled++] = chunk[offset++] as number;
    if (this.headerFilled < 2) return offset;
    const lengthCode = (header[1] as number) & 0x7f;
    const masked = ((header[1] as number) & 0x80) !== 0;
    const headerLength = 2 + (lengthCode === 126 ? 2 : lengthCode === 127 ? 8 : 0) + (masked ? 4 : 0);
    while (this.headerFilled < headerLength && offset < chunk.length) header[this.headerFilled++] = chunk[offset++] as number;
    if (this.headerFilled < headerLength) return offset;
    this.headerFilled = 0;
    this.beginFrame(header, lengthCode, masked);
    return offset;
  }

  private beginFrame(header: Buffer, lengthCode: number, masked: boolean): void {
    const first = header[0] as number;
    if ((first & 0x70) !== 0) throw protocolError('WebSocket frame has reserved bits set (no extensions are negotiated)');
    const opcode = first & 0x0f;
    const fin = (first & 0x80) !== 0;
    if (masked !== this.options.expectMasked) {
      throw protocolError(this.options.expectMasked ? 'unmasked WebSocket frame from a client' : 'masked WebSocket frame from a server');
    }
    let length = lengthCode;
    let maskAt = 2;
    if (lengthCode === 126) {
      length = header.readUInt16BE(2);
      maskAt = 4;
    } else if (lengthCode === 127) {
      const high = header.readUInt32BE(2);
      if (high > 0x1fffff) throw protocolError('WebSocket frame length does not fit in 53 bits');
      length = high * 2 ** 32 + header.readUInt32BE(6);
      maskAt = 10;
    }
    const isControl = opcode >= 0x8;
    if (isControl) {
      if (opcode !== Opcode.close && opcode !== Opcode.ping && opcode !== Opcode.pong) throw protocolError(`invalid WebSocket opcode ${opcode}`);
      if (!fin) throw protocolError('fragmented WebSocket control frame');
      if (length > 125) throw protocolError(`WebSocket control frame of ${length} bytes (at most 125)`);
    } else if (opcode !== Opcode.continuation && opcode !== Opcode.text && opcode !== Opcode.binary) {
      throw protocolError(`invalid WebSocket opcode ${opcode}`);
    } else if (length > this.options.maxFramePayload) {
      throw protocolError(`WebSocket frame of ${length} bytes exceeds the maximum payload ${this.options.maxFramePayload}`);
    }
    this.opcode = opcode;
    this.fin = fin;
    this.remaining = length;
    this.masked = masked && (header[maskAt] !== 0 || header[maskAt + 1] !== 0 || header[maskAt + 2] !== 0 || header[maskAt + 3] !== 0);
    if (this.masked) header.copy(this.mask, 0, maskAt, maskAt + 4);
    this.maskOffset = 0;
    if (isControl) {
      this.controlPayload = Buffer.alloc(length);
      this.controlFilled = 0;
    } else {
      this.sink.dataFrameStart(opcode, fin, length);
    }
    this.state = 'payload';
    if (length === 0) this.endFrame();
  }

  private readPayload(chunk: Buffer, offset: number): number {
    const take = Math.min(this.remaining, chunk.length - offset);
    const end = offset + take;
    // Our own nodes mask with zeros, so this only runs for other clients. The chunk is ours to modify.
    if (this.masked) this.unmask(chunk, offset, end);
    this.remaining -= take;
    if (this.controlPayload) {
      chunk.copy(this.controlPayload, this.controlFilled, offset, end);
      this.controlFilled += take;
    } else if (take > 0) {
      this.sink.dataBytes(chunk, offset, end);
    }
    if (this.remaining === 0) this.endFrame();
    return end;
  }

  private endFrame(): void {
    this.state = 'header';
    const control = this.controlPayload;
    if (control) {
      this.controlPayload = undefined;
      this.sink.controlFrame(this.opcode, control);
    } else {
      this.sink.dataFrameEnd(this.fin);
    }
  }

  private unmask(bytes: Uint8Array, start: number, end: number): void {
    const mask = this.mask;
    let at = this.maskOffset;
    for (let i = start; i < end; i++) {
      bytes[i] = (bytes[i] as number) ^ (mask[at] as number);
      at = (at + 1) & 3;
    }
    this.maskOffset = at;
  }
}
