import { protocolError } from '../errors.js';

/** Element types a tensor frame can carry; the code is what travels in the header. */
export type DType = 'float32' | 'int32' | 'uint8';
export type TensorArray = Float32Array | Int32Array | Uint8Array;

interface DTypeInfo {
  code: number;
  bytesPerElement: number;
  /** Builds a view over bytes that are already aligned for this type. */
  view(buffer: ArrayBufferLike, byteOffset: number, length: number): TensorArray;
  /** True when `array` is this dtype's typed array. */
  matches(array: TensorArray): boolean;
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  float32: { code: 1, bytesPerElement: 4, view: (b, o, n) => new Float32Array(b, o, n), matches: (a) => dtypeOf(a) === 'float32' },
  int32: { code: 2, bytesPerElement: 4, view: (b, o, n) => new Int32Array(b, o, n), matches: (a) => dtypeOf(a) === 'int32' },
  uint8: { code: 3, bytesPerElement: 1, view: (b, o, n) => new Uint8Array(b, o, n), matches: (a) => dtypeOf(a) === 'uint8' },
};

const BY_CODE = new Map<number, DType>(Object.entries(DTYPES).map(([name, info]) => [info.code, name as DType]));

export function dtypeFromCode(code: number): DType {
  const dtype = BY_CODE.get(code);
  if (dtype === undefined) throw protocolError(`unknown tensor dtype code ${code}`);
  return dtype;
}

/** The dtype of a typed array we know how to send, or undefined for anything else. */
export function dtypeOf(data: unknown): DType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  // A Buffer is a Uint8Array too, which is what we want: raw bytes.
  if (data instanceof Uint8Array) return 'uint8';
  return undefined;
}
