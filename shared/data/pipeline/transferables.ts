/**
 * Prepares an element for postMessage so its typed arrays *move* to the other thread instead of
 * being copied. Only a view that spans its whole ArrayBuffer can move; any other view (a
 * subarray, a pooled Node Buffer) is first replaced by a compact copy, because structured clone
 * would otherwise copy its entire backing buffer. Mutates `value`, which the sender owns.
 */
export function prepareTransfer(value: unknown, transfer: ArrayBuffer[] = [], depth = 0): { value: unknown; transfer: ArrayBuffer[] } {
  if (ArrayBuffer.isView(value)) {
    return { value: ownOrCopy(value, transfer), transfer };
  }
  if (depth < 6 && typeof value === 'object' && value !== null) {
    const container = value as Record<string, unknown>;
    for (const key of Object.keys(container)) {
      const child = container[key];
      if (typeof child === 'object' && child !== null) container[key] = prepareTransfer(child, transfer, depth + 1).value;
    }
  }
  return { value, transfer };
}

function ownOrCopy(view: ArrayBufferView, transfer: ArrayBuffer[]): ArrayBufferView {
  const owns = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer;
  const owned = owns ? view : copyView(view);
  const buffer = owned.buffer as ArrayBuffer;
  if (!transfer.includes(buffer)) transfer.push(buffer);
  return owned;
}

function copyView(view: ArrayBufferView): ArrayBufferView {
  if (view instanceof DataView) return new DataView(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
  // Node Buffers come back as plain Uint8Arrays: what arrives on the other side is one anyway.
  if (Buffer.isBuffer(view)) return new Uint8Array(view);
  return (view as unknown as { slice(): ArrayBufferView }).slice();
}
