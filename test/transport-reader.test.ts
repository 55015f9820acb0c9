/**
 * The receive path without sockets: RFC 6455 frames split at arbitrary byte boundaries, masked and
 * unmasked, control frames between fragments, and a waiter that shows up while its frame is arriving.
 */
import { describe, expect, it } from 'vitest';
import { MessageAssembler, type MessageSink } from '../shared/transport/link/message-assembler.js';
import { DeadlineQueue } from '../shared/transport/link/deadline-queue.js';
import { TensorInbox } from '../shared/transport/link/tensor-inbox.js';
import { Opcode, WsFrameParser } from '../shared/transport/link/ws-frame-parser.js';
import { encodeControlFrame } from '../shared/transport/wire/control-codec.js';
import { FrameKind } from '../shared/transport/wire/frame-prefix.js';
import { encodeTensorHeader, type TensorHeader } from '../shared/transport/wire/tensor-header.js';

function wsFrame(opcode: number, fin: boolean, payload: Uint8Array, mask?: Uint8Array): Buffer {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const header = Buffer.alloc(2 + lengthBytes + (mask ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | opcode;
  header[1] = (mask ? 0x80 : 0) | (length < 126 ? length : length < 65536 ? 126 : 127);
  if (lengthBytes === 2) header.writeUInt16BE(length, 2);
  if (lengthBytes === 8) header.writeUInt32BE(length, 6);
  const body = Buffer.from(payload);
  if (mask) {
    header.set(mask, 2 + lengthBytes);
    for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (mask[i & 3] as number);
  }
  return Buffer.concat([header, body]);
}

interface Received {
  tensors: { header: TensorHeader; data: Uint8Array }[];
  controls: unknown[];
  controlFrames: number[];
}

function reader(expectMasked: boolean, authenticated = true): { push(chunk: Buffer): void; received: Received } {
  const received: Received = { tensors: [], controls: [], controlFrames: [] };
  const buffers = new Map<TensorHeader, Uint8Array>();
  const sink: MessageSink = {
    isAuthenticated: () => authenticated,
    onSession: () => undefined,
    onControl: (message) => received.controls.push(message),
    onControlFrame: (opcode) => received.controlFrames.push(opcode),
    tensorDestination: (header) => {
      const target = new Uint8Array(header.length * 4);
      let filled = 0;
      buffers.set(header, target);
      return {
        byteLength: target.length,
        write(chunk, start, end) {
          target.set(chunk.subarray(start, end), filled);
          filled += end - start;
        },
      };
    },
    onTensor: (header) => received.tensors.push({ header, data: buffers.get(header) as Uint8Array }),
  };
  const assembler = new MessageAssembler({ version: 1, maxMessageBytes: 1 << 20, maxControlBytes: 4096, maxTensorBytes: 1 << 20, maxFragments: 8 }, sink);
  const parser = new WsFrameParser({ expectMasked, maxFramePayload: 1 << 20 }, assembler);
  return { push: (chunk) => parser.push(chunk, () => false), received };
}

const header: TensorHeader = { epoch: 1, step: 2, tensorId: 3, offset: 0, length: 50_000, totalLength: 50_000, dtype: 'float32' };
const payload = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7) % 256);
const stream = (mask?: Uint8Array): Buffer =>
  Buffer.concat([
    wsFrame(Opcode.binary, false, encodeTensorHeader(header, 1), mask),
    wsFrame(Opcode.ping, true, Buffer.from('are you there'), mask), // control frames may sit between fragments
    wsFrame(Opcode.continuation, false, payload.subarray(0, 123_457), mask),
    wsFrame(Opcode.continuation, true, payload.subarray(123_457), mask),
    wsFrame(Opcode.binary, true, encodeControlFrame(FrameKind.control, 1, { type: 'x', n: 1 }, 4096), mask),
  ]);

describe('frame reader', () => {
  for (const masked of [false, true]) {
    it(`reassembles ${masked ? 'masked' : 'unmasked'} fragmented messages however the bytes are split`, () => {
      const bytes = stream(masked ? Uint8Array.from([0x12, 0x34, 0x56, 0x78]) : undefined);
      const splits = [1, 3, 7, 4096, 65536, bytes.length];
      for (const size of splits) {
        const { push, received } = reader(masked);
        // Chunks are copied: an in-place unmask must not affect the next round.
        const copy = Buffer.from(bytes);
        for (let at = 0; at < copy.length; at += size) push(copy.subarray(at, at + size));
        expect(received.tensors).toHaveLength(1);
        expect(received.tensors[0]?.header).toEqual(header);
        expect(Buffer.compare(received.tensors[0]?.data as Uint8Array, payload)).toBe(0);
        expect(received.controls).toEqual([{ type: 'x', n: 1 }]);
        expect(received.controlFrames).toEqual([Opcode.ping]);
      }
    });
  }

  it('rejects frames that break RFC 6455 or our limits', () => {
    const cases: [Buffer, RegExp, boolean?][] = [
      [wsFrame(Opcode.binary, true, Buffer.alloc(8)), /unmasked WebSocket frame from a client/, true],
      [Buffer.from([0xc2, 0x00]), /reserved bits/],
      [Buffer.from([0x83, 0x00]), /invalid WebSocket opcode 3/],
      [Buffer.from([0x09, 0x00]), /fragmented WebSocket control frame/],
      [Buffer.from([0x89, 126, 0, 200]), /control frame of 200 bytes/],
      [Buffer.from([0x82, 127, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), /does not fit in 53 bits/],
      [Buffer.from([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]), /exceeds the maximum payload/],
      [wsFrame(Opcode.continuation, true, Buffer.alloc(4)), /continuation frame without a message/],
      [wsFrame(Opcode.text, true, Buffer.from('hi')), /text frame/],
      [Buffer.concat([wsFrame(Opcode.binary, false, Buffer.from('RPC')), wsFrame(Opcode.binary, true, Buffer.from('x'))]), /new message started before/],
      [Buffer.concat(Array.from({ length: 9 }, (_, i) => wsFrame(i === 0 ? Opcode.binary : Opcode.continuation, false, i === 0 ? Buffer.from([0x52, 0x50, 0x43, 1]) : Buffer.from('a')))), /more than 8 fragments/],
      [wsFrame(Opcode.binary, true, Buffer.concat([encodeTensorHeader(header, 1), Buffer.alloc(10)])), /header says 50000 float32 elements \(200000 bytes\) but the payload has 10 bytes/],
      [Buffer.concat([wsFrame(Opcode.binary, false, encodeTensorHeader({ ...header, length: 1, totalLength: 1 }, 1)), wsFrame(Opcode.continuation, true, Buffer.alloc(8))]), /header says 4 payload bytes but the frames carry 8/],
      [wsFrame(Opcode.binary, true, Buffer.from([0x52, 0x50, 0x43, 1, ...Buffer.alloc(5000)])), /exceeds maxControlBytes 4096/],
      [wsFrame(Opcode.binary, true, Buffer.from('RP')), /shorter than the 4-byte prefix/],
      [wsFrame(Opcode.binary, true, Buffer.from([0x52, 0x50, 0x43, 9, 0x80])), /protocol version 9/],
    ];
    for (const [bytes, error, serverSide] of cases) {
      const { push } = reader(serverSide === true);
      expect(() => push(bytes), String(error)).toThrow(error);
    }
    const { push } = reader(false, false);
    expect(() => push(wsFrame(Opcode.binary, true, encodeTensorHeader(header, 1)))).toThrow(/tensor frame before authentication/);
  });
});

describe('tensor inbox', () => {
  const small: TensorHeader = { epoch: 0, step: 0, tensorId: 0, offset: 2, length: 4, totalLength: 8, dtype: 'float32' };
  const bytes = new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer);

  it('moves a frame that started arriving before its waiter into the waiter buffer', async () => {
    let consumed = 0;
    const inbox = new TensorInbox((n) => (consumed += n), () => 'timeout', new DeadlineQueue());
    const writer = inbox.destinationFor(small);
    writer.write(Buffer.from(bytes), 0, 6);
    const into = new Float32Array(8);
    const next = inbox.next(into, 1_000);
    writer.write(Buffer.from(bytes), 6, 16);
    inbox.complete(small);
    const frame = await next;
    expect(frame.data.buffer).toBe(into.buffer);
    expect(Array.from(into)).toEqual([0, 0, 1, 2, 3, 4, 0, 0]);
    expect(consumed).toBe(16);
  });

  it('writes straight into a waiting buffer, and queues in order when nobody waits', async () => {
    const inbox = new TensorInbox(() => undefined, () => 'timeout', new DeadlineQueue());
    const into = new Float32Array(8);
    const first = inbox.next(into, 1_000);
    const writer = inbox.destinationFor(small);
    writer.write(Buffer.from(bytes), 0, 16);
    inbox.complete(small);
    expect(Array.from((await first).data)).toEqual([1, 2, 3, 4]);

    for (const step of [1, 2]) {
      const w = inbox.destinationFor({ ...small, step });
      w.write(Buffer.from(bytes), 0, 16);
      inbox.complete({ ...small, step });
    }
    expect(inbox.queuedBytes).toBe(32);
    expect((await inbox.next(undefined, 1_000)).header.step).toBe(1);
    expect((await inbox.next(undefined, 1_000)).header.step).toBe(2);
  });

  it('fails the waiting receive when the link dies mid-frame', async () => {
    const inbox = new TensorInbox(() => undefined, () => 'timeout', new DeadlineQueue());
    const next = inbox.next(new Float32Array(8), 1_000);
    inbox.destinationFor(small).write(Buffer.from(bytes), 0, 4);
    inbox.failAll(new Error('link closed'));
    await expect(next).rejects.toThrow('link closed');
  });
});

describe('tensor framing on the send side', () => {
  it('produces exactly the two fragments the reader expects, masked and unmasked, at every length class', async () => {
    const { encodeTensorFramePrefix } = await import('../shared/transport/wire/ws-tensor-framing.js');
    for (const masked of [false, true]) {
      for (const elements of [0, 31, 32, 16_383, 16_384, 70_000]) {
        const h: TensorHeader = { epoch: 9, step: 8, tensorId: 7, offset: 0, length: elements, totalLength: elements, dtype: 'float32' };
        const data = Uint8Array.from({ length: elements * 4 }, (_, i) => i % 249);
        const headerBytes = encodeTensorHeader(h, 1);
        const wire = Buffer.concat([encodeTensorFramePrefix(h, 1, masked), data]);
        expect(wire).toEqual(Buffer.concat([
          wsFrame(Opcode.binary, false, headerBytes, masked ? new Uint8Array(4) : undefined),
          wsFrame(Opcode.continuation, true, data, masked ? new Uint8Array(4) : undefined),
        ]));
        const { push, received } = reader(masked);
        push(wire);
        expect(received.tensors[0]?.header).toEqual(h);
        expect(Buffer.compare(received.tensors[0]?.data as Uint8Array, data)).toBe(0);
      }
    }
  });
});
