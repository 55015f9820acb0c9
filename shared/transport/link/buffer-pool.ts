/**
 * Reusable receive buffers for frames that arrive before anyone waits for them. Touching fresh
 * memory is slow (see DESIGN.md: ≈ 0.3 GB/s on first touch), so buffers whose bytes were copied out
 * to the caller come back here. Holds at most `maxBytes` in total.
 */
export class BufferPool {
  private readonly free = new Map<number, Uint8Array[]>();
  private heldBytes = 0;

  constructor(private readonly maxBytes: number) {}

  take(byteLength: number): Uint8Array {
    const list = this.free.get(byteLength);
    const reused = list?.pop();
    if (reused) {
      this.heldBytes -= byteLength;
      return reused;
    }
    return new Uint8Array(byteLength);
  }

  give(buffer: Uint8Array): void {
    if (buffer.byteLength === 0 || this.heldBytes + buffer.byteLength > this.maxBytes) return;
    const list = this.free.get(buffer.byteLength) ?? [];
    list.push(buffer);
    this.free.set(buffer.byteLength, list);
    this.heldBytes += buffer.byteLength;
  }

  clear(): void {
    this.free.clear();
    this.heldBytes = 0;
  }
}
