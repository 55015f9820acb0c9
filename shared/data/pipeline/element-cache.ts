import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import { DataError } from './data-error.js';
import type { ItemOutcome } from './run-stages.js';

/**
 * Keeps each sample's element (by source index) once computed, so the work upstream of `cache()`
 * (e.g. decoding) runs in the first epoch only. Failed samples are kept too, so a bad file is
 * not decoded again every epoch. Every `get` returns a fresh copy the caller owns.
 */
export interface ElementCache {
  get(sampleIndex: number): ItemOutcome | undefined;
  put(sampleIndex: number, outcome: ItemOutcome): void;
  close(): void;
}

export class MemoryCache implements ElementCache {
  private readonly entries = new Map<number, ItemOutcome>();

  get(sampleIndex: number): ItemOutcome | undefined {
    const entry = this.entries.get(sampleIndex);
    return entry && structuredClone(entry);
  }

  put(sampleIndex: number, outcome: ItemOutcome): void {
    this.entries.set(sampleIndex, structuredClone(outcome));
  }

  close(): void {
    this.entries.clear();
  }
}

const MAGIC = Buffer.from('RINGPIPE-CACHE-1\n');
const RECORD_HEADER = 8; // uint32 sample index, uint32 byte length

/**
 * An append-only file of v8-serialised elements that outlives the process: a later run of the
 * same pipeline (same source and upstream maps, recorded in the header) starts with it warm.
 * A record cut short by a crash is dropped when the file is reopened.
 */
export class FileCache implements ElementCache {
  private readonly fd: number;
  private readonly index = new Map<number, { offset: number; length: number }>();
  private end: number;

  constructor(
    private readonly file: string,
    identity: string,
  ) {
    const header = Buffer.concat([MAGIC, Buffer.from(`${identity}\n`)]);
    const fresh = !existsSync(file);
    try {
      this.fd = openSync(file, fresh ? 'w+' : 'r+');
    } catch (err) {
      throw new DataError(`${file}: cannot open the cache file (${(err as NodeJS.ErrnoException).code ?? String(err)}). Choose a writable path.`);
    }
    if (fresh || fstatSync(this.fd).size === 0) {
      writeSync(this.fd, header, 0, header.length, 0);
      this.end = header.length;
    } else {
      this.end = this.scan(header);
    }
  }

  get(sampleIndex: number): ItemOutcome | undefined {
    const at = this.index.get(sampleIndex);
    if (!at) return undefined;
    const bytes = Buffer.allocUnsafe(at.length);
    readSync(this.fd, bytes, 0, at.length, at.offset);
    return deserialize(bytes) as ItemOutcome;
  }

  put(sampleIndex: number, outcome: ItemOutcome): void {
    const body = serialize(outcome);
    const head = Buffer.alloc(RECORD_HEADER);
    head.writeUInt32LE(sampleIndex, 0);
    head.writeUInt32LE(body.length, 4);
    writeSync(this.fd, head, 0, RECORD_HEADER, this.end);
    writeSync(this.fd, body, 0, body.length, this.end + RECORD_HEADER);
    this.index.set(sampleIndex, { offset: this.end + RECORD_HEADER, length: body.length });
    this.end += RECORD_HEADER + body.length;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Indexes the records of an existing file; returns where the next record goes. */
  private scan(expectedHeader: Buffer): number {
    const size = fstatSync(this.fd).size;
    const header = Buffer.alloc(Math.min(size, expectedHeader.length));
    readSync(this.fd, header, 0, header.length, 0);
    if (!header.equals(expectedHeader)) {
      const found = header.subarray(0, MAGIC.length).equals(MAGIC) ? `a different pipeline (${header.subarray(MAGIC.length).toString().trim()})` : 'something that is not a ringpipe cache';
      closeSync(this.fd);
      throw new DataError(`${this.file}: this cache file holds ${found}. Delete it, or give this pipeline its own cache path.`);
    }
    let offset = expectedHeader.length;
    const head = Buffer.alloc(RECORD_HEADER);
    while (offset + RECORD_HEADER <= size) {
      readSync(this.fd, head, 0, RECORD_HEADER, offset);
      const length = head.readUInt32LE(4);
      if (offset + RECORD_HEADER + length > size) break;
      this.index.set(head.readUInt32LE(0), { offset: offset + RECORD_HEADER, length });
      offset += RECORD_HEADER + length;
    }
    if (offset < size) ftruncateSync(this.fd, offset);
    return offset;
  }
}
