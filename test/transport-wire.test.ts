import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { computeProof, newNonce, proofMatches } from '../shared/transport/auth/proof.js';
import { loadSecret, requireSecretUnlessLoopback } from '../shared/transport/auth/secret.js';
import { isLoopbackHost } from '../shared/transport/auth/loopback.js';
import { resolveLimits } from '../shared/transport/limits.js';
import { defineMessages } from '../shared/transport/messages/define-messages.js';
import type { Introduction } from '../shared/transport/messages/session-messages.js';
import { sessionMessages } from '../shared/transport/messages/session-messages.js';
import { decodeControlBody, encodeControlFrame } from '../shared/transport/wire/control-codec.js';
import { FrameKind, readFramePrefix } from '../shared/transport/wire/frame-prefix.js';
import { TENSOR_HEADER_BYTES, decodeTensorHeader, encodeTensorHeader, type TensorHeader } from '../shared/transport/wire/tensor-header.js';
import { copyPayloadInto, viewPayload } from '../shared/transport/wire/tensor-payload.js';

const header: TensorHeader = { epoch: 3, step: 9, tensorId: 4, offset: 2, length: 5, totalLength: 10, dtype: 'float32' };

describe('tensor header', () => {
  it('round-trips and is a multiple of 4 bytes', () => {
    expect(TENSOR_HEADER_BYTES % 4).toBe(0);
    const bytes = encodeTensorHeader(header, 1);
    expect(bytes.length).toBe(TENSOR_HEADER_BYTES);
    expect(readFramePrefix(bytes)).toEqual({ kind: FrameKind.tensor, version: 1 });
    expect(decodeTensorHeader(bytes, 20, 1024)).toEqual(header);
  });

  it('rejects a payload whose length does not match the header', () => {
    const bytes = encodeTensorHeader(header, 1);
    expect(() => decodeTensorHeader(bytes, 19, 1024)).toThrow(/5 float32 elements \(20 bytes\) but the payload has 19 bytes/);
    expect(() => decodeTensorHeader(bytes, 24, 1024)).toThrow(/payload has 24 bytes/);
  });

  it('rejects unknown dtypes, offsets out of range, reserved bytes, oversize and short headers', () => {
    const badDtype = encodeTensorHeader(header, 1);
    badDtype[28] = 99;
    expect(() => decodeTensorHeader(badDtype, 20, 1024)).toThrow(/unknown tensor dtype code 99/);
    const outOfRange = encodeTensorHeader({ ...header, offset: 8 }, 1);
    expect(() => decodeTensorHeader(outOfRange, 20, 1024)).toThrow(/beyond totalLength 10/);
    const overflow = encodeTensorHeader({ ...header, offset: 0xffff_ffff, totalLength: 0xffff_ffff }, 1);
    expect(() => decodeTensorHeader(overflow, 20, 1024)).toThrow(/beyond totalLength/);
    const reserved = encodeTensorHeader(header, 1);
    reserved[30] = 1;
    expect(() => decodeTensorHeader(reserved, 20, 1024)).toThrow(/reserved/);
    expect(() => decodeTensorHeader(encodeTensorHeader(header, 1), 20, 16)).toThrow(/exceeds maxTensorBytes 16/);
    expect(() => decodeTensorHeader(encodeTensorHeader(header, 1).subarray(0, 31), 20, 1024)).toThrow(/shorter than the 32-byte header/);
  });

  it('rejects frames without the magic or of an unknown kind', () => {
    expect(() => readFramePrefix(Buffer.from('GET /'))).toThrow(/magic/);
    expect(() => readFramePrefix(Buffer.from([0x52, 0x50, 0x58, 1]))).toThrow(/unknown frame kind 0x58/);
    expect(() => readFramePrefix(Buffer.from([0x52, 0x50]))).toThrow(/shorter than the 4-byte prefix/);
  });
});

describe('tensor payload views', () => {
  const values = Float32Array.from([1.5, -2, 3.25, 4, 5]);
  const payloadHeader: TensorHeader = { ...header, offset: 0 };

  it('views aligned bytes without copying', () => {
    const bytes = new Uint8Array(values.buffer);
    const view = viewPayload(payloadHeader, bytes);
    expect(view.buffer).toBe(values.buffer);
    expect(Array.from(view)).toEqual(Array.from(values));
  });

  it('copies misaligned bytes into an aligned array', () => {
    const backing = new Uint8Array(values.byteLength + 1);
    backing.set(new Uint8Array(values.buffer), 1);
    const misaligned = backing.subarray(1);
    const view = viewPayload(payloadHeader, misaligned);
    expect(view.buffer).not.toBe(backing.buffer);
    expect(view.byteOffset % 4).toBe(0);
    expect(Array.from(view)).toEqual(Array.from(values));
  });

  it('copies into a caller buffer at the header offset, and refuses a wrong dtype or a short buffer', () => {
    const into = new Float32Array(10);
    const written = copyPayloadInto(header, new Uint8Array(values.buffer), into);
    expect(written.buffer).toBe(into.buffer);
    expect(Array.from(into)).toEqual([0, 0, 1.5, -2, 3.25, 4, 5, 0, 0, 0]);
    expect(() => copyPayloadInto(header, new Uint8Array(values.buffer), new Int32Array(10))).toThrow(/float32 tensor frame but the receive buffer is a Int32Array/);
    expect(() => copyPayloadInto(header, new Uint8Array(values.buffer), new Float32Array(6))).toThrow(/too small/);
  });
});

describe('control messages', () => {
  const messages = defineMessages({ join: { rank: z.number().int(), name: z.string() }, leave: {} });

  it('validates the discriminated union strictly', () => {
    expect(messages.parse({ type: 'join', rank: 1, name: 'a' })).toEqual({ type: 'join', rank: 1, name: 'a' });
    expect(() => messages.parse({ type: 'nope' })).toThrow(/unknown control message type "nope"/);
    expect(() => messages.parse({ type: 'join', rank: '1', name: 'a' })).toThrow(/invalid 'join' message/);
    expect(() => messages.parse({ type: 'join', rank: 1, name: 'a', extra: true })).toThrow(/invalid 'join' message/);
    expect(() => messages.parse([1, 2])).toThrow(/not a map/);
    expect(() => messages.parse(null)).toThrow(/not a map/);
    expect(() => messages.parse({ type: 'leave', constructor: 1 })).toThrow(/invalid 'leave'/);
  });

  it('encodes with a prefix and rejects malformed, truncated, trailing and oversize msgpack', () => {
    const frame = encodeControlFrame(FrameKind.control, 1, { type: 'join', rank: 2, name: 'b' }, 1024);
    expect(readFramePrefix(frame)).toEqual({ kind: FrameKind.control, version: 1 });
    expect(messages.parse(decodeControlBody(frame, 1024))).toEqual({ type: 'join', rank: 2, name: 'b' });
    expect(() => decodeControlBody(frame.subarray(0, frame.length - 2), 1024)).toThrow(/malformed msgpack/);
    expect(() => decodeControlBody(Buffer.concat([frame, Buffer.from([1])]), 1024)).toThrow(/malformed msgpack/);
    // 0xc1 is 'never used' in msgpack: either the decoder or the schema must reject it.
    expect(() => messages.parse(decodeControlBody(Buffer.from([0x52, 0x50, 0x43, 1, 0xc1]), 1024))).toThrow(/malformed msgpack|not a map|unknown control message type/);
    expect(() => decodeControlBody(frame, 4)).toThrow(/exceeds maxControlBytes/);
    expect(() => encodeControlFrame(FrameKind.control, 1, { type: 'join', name: 'x'.repeat(100) }, 50)).toThrow(/exceeds maxControlBytes 50/);
    // Extension types (dates, sets…) decode into objects that the schemas then reject.
    const withDate = Buffer.concat([Buffer.from([0x52, 0x50, 0x43, 1]), new Packr().pack({ type: 'join', rank: new Date(), name: 'x' })]);
    expect(() => messages.parse(decodeControlBody(withDate, 1024))).toThrow(/invalid 'join'/);
  });

  it('session messages need 32-byte nonces and known refuse codes', () => {
    const hello = { type: 'hello', protocolVersion: 1, cluster: 'c', nodeId: 'n', role: 'r', nonce: newNonce(), secured: true, receiveWindow: 1 };
    expect(sessionMessages.parse(hello).type).toBe('hello');
    expect(() => sessionMessages.parse({ ...hello, nonce: new Uint8Array(31) })).toThrow(/32 bytes/);
    expect(() => sessionMessages.parse({ type: 'refuse', code: 'whatever', reason: 'x' })).toThrow(/invalid 'refuse'/);
  });
});

describe('handshake proofs', () => {
  const intro = (nodeId: string): Introduction => ({
    type: 'hello',
    protocolVersion: 1,
    cluster: 'c',
    nodeId,
    role: 'peer',
    nonce: newNonce(),
    secured: true,
    receiveWindow: 1,
  });
  const secret = Buffer.from('0123456789abcdef0123');

  it('binds the prover role, both nonces and the secret', () => {
    const dialer = intro('a');
    const listener = intro('b');
    const proof = computeProof(secret, 'dialer', dialer, listener);
    expect(proofMatches(proof, computeProof(secret, 'dialer', dialer, listener))).toBe(true);
    expect(proofMatches(proof, computeProof(secret, 'listener', dialer, listener))).toBe(false);
    expect(proofMatches(proof, computeProof(secret, 'dialer', { ...dialer, nonce: newNonce() }, listener))).toBe(false);
    expect(proofMatches(proof, computeProof(Buffer.from('another-secret-0123456'), 'dialer', dialer, listener))).toBe(false);
    expect(proofMatches(proof, computeProof(secret, 'dialer', { ...dialer, cluster: 'd' }, listener))).toBe(false);
    expect(proofMatches(proof, proof.subarray(0, 16))).toBe(false);
  });
});

describe('secret and limits configuration', () => {
  it('loads the secret from the option, a file, or the environment, and rejects short ones', () => {
    expect(loadSecret({ env: {} })).toBeUndefined();
    expect(Buffer.from(loadSecret({ env: { RINGPIPE_SECRET: 'x'.repeat(16) }}) ?? []).toString()).toBe('x'.repeat(16));
    const dir = mkdtempSync(join(tmpdir(), 'ringpipe-secret-'));
    const file = join(dir, 'secret');
    writeFileSync(file, '  file-secret-0123456789\n');
    expect(Buffer.from(loadSecret({ secretFile: file, env: {} }) ?? []).toString()).toBe('file-secret-0123456789');
    expect(Buffer.from(loadSecret({ env: { RINGPIPE_SECRET_FILE: file } }) ?? []).toString()).toBe('file-secret-0123456789');
    expect(() => loadSecret({ secret: 'short', env: {} })).toThrow(/too short \(5 bytes, need at least 16\).*RINGPIPE_SECRET/);
    expect(() => loadSecret({ secretFile: join(dir, 'missing'), env: {} })).toThrow(/cannot read cluster secret file/);
  });

  it('allows running without a secret only on loopback', () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('127.8.9.10')).toBe(true);
    expect(isLoopbackHost('::1')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(() => requireSecretUnlessLoopback(undefined, '127.0.0.1', 'listen')).not.toThrow();
    expect(() => requireSecretUnlessLoopback(undefined, '0.0.0.0', 'listen')).toThrow(/no cluster secret: refusing to listen on 0.0.0.0.*RINGPIPE_SECRET/);
    expect(() => requireSecretUnlessLoopback(Buffer.alloc(16), '0.0.0.0', 'listen')).not.toThrow();
  });

  it('validates limits with a message naming the problem', () => {
    expect(resolveLimits().heartbeatTimeoutMs).toBe(5_000);
    expect(() => resolveLimits({ heartbeatTimeoutMs: 500, heartbeatIntervalMs: 1000 })).toThrow(/heartbeatTimeoutMs \(500\) must be longer/);
    expect(() => resolveLimits({ maxTensorBytes: 1024, receiveWindowBytes: 1024 })).toThrow(/at least 2 × maxTensorBytes/);
    expect(() => resolveLimits({ maxPendingConnections: -1 })).toThrow(/positive integer/);
    expect(() => resolveLimits({ nonsense: 1 } as never)).toThrow(/unknown transport limit 'nonsense'/);
  });
});
