/**
 * The few pieces of the WebAssembly binary format our hand-assembled modules (the ring's SIMD add,
 * the fused Adam) are built from, so no toolchain is needed at run or build time.
 * Format: https://webassembly.github.io/spec/core/binary/.
 */

/** Unsigned LEB128, the format's variable-length integer. */
export function uleb128(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** A section: its id, then its body's length, then the body. */
export function wasmSection(id: number, body: number[]): number[] {
  return [id, ...uleb128(body.length), ...body];
}

/** A name: its UTF-8 length, then its bytes. */
export function wasmName(text: string): number[] {
  return [...uleb128(text.length), ...Buffer.from(text, 'utf8')];
}
