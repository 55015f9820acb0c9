import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { augmentImage, csvSource, Dataset, decodeImage, imageFolderSource, jsonLinesSource, scalePixels } from '../shared/data/index.js';
import { parseCsvRows } from '../shared/data/sources/csv-rows.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rp-sources-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

/** A width×height RGB PNG whose pixel (y, x) is (value, x, y). */
function pngBytes(width: number, height: number, value: number): Buffer {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) png.data.set([value, x, y, 255], (y * width + x) * 4);
  }
  return PNG.sync.write(png);
}

describe('CSV', () => {
  it('parses quotes, embedded delimiters and newlines, CRLF, and reports the line each row starts on', () => {
    const rows = parseCsvRows('a,b\r\n"x, ""y""",2\n\n"multi\nline",3\n', 'f.csv');
    expect(rows).toEqual([
      { fields: ['a', 'b'], line: 1 },
      { fields: ['x, "y"', '2'], line: 2 },
      { fields: ['multi\nline', '3'], line: 4 },
    ]);
    expect(() => parseCsvRows('a\n"open,1\n', 'f.csv')).toThrow(/^f\.csv:2: a quoted field is never closed/);
    expect(() => parseCsvRows('"a"b,1\n', 'f.csv')).toThrow(/^f\.csv:1: unexpected 'b' after a closing quote/);
  });

  it('maps feature and label columns, class names sorted into indices', async () => {
    const file = write('iris.csv', 'sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n4.9,1.4,setosa\n');
    const source = await csvSource(file, { label: 'species' });
    expect([source.size, source.numClasses, source.classes, source.featureNames]).toEqual([4, 3, ['setosa', 'versicolor', 'virginica'], ['sepal', 'petal']]);
    expect(source.read(1)).toEqual({ x: Float32Array.of(7.0, 4.7), label: 1 });
    const iterator = Dataset.from(source).batch(4).iterate();
    expect([...(await iterator.next()).labels]).toEqual([0, 1, 2, 0]);
    await iterator.close();
    const byIndex = await csvSource(file, { label: 2, features: ['petal'], classes: ['virginica', 'versicolor', 'setosa'] });
    expect(byIndex.read(0)).toEqual({ x: Float32Array.of(1.4), label: 2 });
  });

  it('names file and line of a bad row and says what to do; skips and counts when asked', async () => {
    const file = write('bad.csv', 'a,b,label\n1,2,0\n3,oops,1\n4,5\n6,7,2\n');
    await expect(csvSource(file, { label: 'label' })).rejects.toThrow(`${file}:3: column "b" is "oops", not a number. Fix the row or pass onBadRow: 'skip'.`);
    const source = await csvSource(file, { label: 'label', onBadRow: 'skip' });
    expect(source.size).toBe(2);
    expect(source.skipped).toEqual([
      { where: `${file}:3`, problem: `column "b" is "oops", not a number. Fix the row or pass onBadRow: 'skip'.` },
      { where: `${file}:4`, problem: `2 columns, expected 3 as in the header. Fix the row or pass onBadRow: 'skip'.` },
    ]);
    await expect(csvSource(file, { label: 'kind' })).rejects.toThrow(`${file}:1: label column "kind" not found; the columns are "a", "b", "label".`);
    await expect(csvSource(write('unknown-class.csv', 'a,y\n1,cat\n2,dog\n'), { label: 'y', classes: ['cat'] })).rejects.toThrow(/unknown-class\.csv:3: label 'dog' is not one of the classes \["cat"\]/);
    await expect(csvSource(path.join(tmp, 'missing.csv'), { label: 0 })).rejects.toThrow(/missing\.csv: cannot read the file \(ENOENT\)\. Check the path\./);
  });
});

describe('JSON Lines', () => {
  it('reads feature keys or one array-valued key, with integer labels as class indices', async () => {
    const file = write('points.jsonl', '{"x": 1, "y": 2, "label": 1}\n\n{"x": 3, "y": 4, "label": 0}\n');
    const source = await jsonLinesSource(file, { label: 'label', features: ['x', 'y'] });
    expect([source.size, source.numClasses, source.classes]).toEqual([2, 2, undefined]);
    expect(source.read(0)).toEqual({ x: Float32Array.of(1, 2), label: 1 });
    const arrays = await jsonLinesSource(write('arrays.jsonl', '{"pixels": [0, 0.5, 1], "digit": "7"}\n'), { label: 'digit', features: 'pixels' });
    expect([arrays.read(0), arrays.featureNames]).toEqual([{ x: Float32Array.of(0, 0.5, 1), label: 7 }, ['pixels[0]', 'pixels[1]', 'pixels[2]']]);
  });

  it('names file and line of a bad line; skips and counts when asked', async () => {
    const file = write('bad.jsonl', '{"v": [1, 2], "label": 0}\n{"v": [1, 2], "label": 1\n{"v": [1], "label": 1}\n{"v": [3, "x"], "label": 1}\n[1]\n{"v": [5, 6], "label": 1}\n');
    await expect(jsonLinesSource(file, { label: 'label', features: 'v' })).rejects.toThrow(new RegExp(`^${file}:2: not valid JSON \\(.*\\)\\. Fix the line or pass onBadRow: 'skip'\\.$`));
    const source = await jsonLinesSource(file, { label: 'label', features: 'v', onBadRow: 'skip' });
    expect(source.size).toBe(2);
    expect(source.skipped.map((s) => s.where)).toEqual([2, 3, 4, 5].map((line) => `${file}:${line}`));
    expect(source.skipped.map((s) => s.problem.split('.')[0])).toEqual([
      expect.stringMatching(/^not valid JSON/),
      '1 features, but earlier rows have 2',
      'v[1] is "x", not a number',
      'expected a JSON object per line',
    ]);
  });
});

describe('image folder', () => {
  const root = path.join(tmp, 'images');
  mkdirSync(path.join(root, 'cats'), { recursive: true });
  mkdirSync(path.join(root, 'dogs'), { recursive: true });
  writeFileSync(path.join(root, 'cats', 'a.png'), pngBytes(6, 4, 10));
  writeFileSync(path.join(root, 'cats', 'b.png'), pngBytes(6, 4, 20));
  writeFileSync(path.join(root, 'cats', 'notes.txt'), 'ignored');
  const jpegPixels = Buffer.alloc(6 * 4 * 4, 200);
  writeFileSync(path.join(root, 'dogs', 'c.jpg'), jpeg.encode({ data: jpegPixels, width: 6, height: 4 }, 95).data);
  writeFileSync(path.join(root, 'dogs', 'bad.png'), Buffer.from('definitely not a png'));

  it('labels images by sub-folder and decodes PNG and JPEG', async () => {
    const source = await imageFolderSource(root);
    expect(source.classes).toEqual(['cats', 'dogs']);
    expect(source.size).toBe(4);
    const ctx = { random: undefined as never, sampleIndex: 0, epoch: 0 };
    const png = decodeImage.apply(source.read(1), { channels: 3 }, ctx);
    expect([png.height, png.width, png.channels, png.label]).toEqual([4, 6, 3, 0]);
    expect([...png.data.subarray((2 * 6 + 5) * 3, (2 * 6 + 5) * 3 + 3)]).toEqual([20, 5, 2]);
    const jpg = decodeImage.apply(source.read(3), { channels: 1 }, ctx);
    expect([jpg.height, jpg.width, jpg.channels, jpg.label]).toEqual([4, 6, 1, 1]);
    expect(Math.abs(jpg.data[0]! - 200)).toBeLessThan(4);
  });

  it('names a corrupt file, or skips and counts it', async () => {
    const decoded = Dataset.from(await imageFolderSource(root)).map(decodeImage.with({ channels: 1 }), { parallel: 1 });
    const strict = decoded.map(scalePixels.with({})).batch(4).iterate();
    await expect(strict.next()).rejects.toThrow(`${path.join(root, 'dogs', 'bad.png')}: cannot decode the image (not a PNG or JPEG file (starts with bytes 64 65 66 69)). Replace or remove the file, or map with { onError: 'skip' } to skip and count bad files.`);
    await strict.close();
    const lenient = Dataset.from(await imageFolderSource(root)).map(decodeImage.with({ channels: 1 }), { onError: 'skip' }).map(scalePixels.with({})).batch(3).iterate();
    const batch = await lenient.next();
    expect([...batch.labels]).toEqual([0, 0, 1]); // cats/a, cats/b, dogs/c (dogs/bad skipped)
    expect(lenient.skipStats.skipped).toBe(1);
    await lenient.close();
  });

  it('refuses a folder without class sub-folders, saying how to lay it out', async () => {
    await expect(imageFolderSource(path.join(root, 'cats'))).rejects.toThrow(/cats: no class sub-folders found\. Put the images of each class in their own sub-folder/);
    await expect(imageFolderSource(path.join(tmp, 'nowhere'))).rejects.toThrow(/nowhere: cannot read the image folder \(ENOENT\)/);
  });
});

describe('image augmentation', () => {
  const image = { data: Uint8Array.from({ length: 4 * 4 }, (_, i) => i), height: 4, width: 4, channels: 1, label: 3 };
  const ctx = (cropAt: number, flip = 0.9) => ({ random: { next: () => flip, nextInt: (n: number) => Math.floor(cropAt * n) } as never, sampleIndex: 0, epoch: 0 });

  it('crops, flips and resizes', () => {
    const cropped = augmentImage.apply(image, { crop: [2, 2], randomCrop: false }, ctx(0));
    expect([...cropped.data]).toEqual([5, 6, 9, 10]);
    const flipped = augmentImage.apply(image, { crop: [2, 2], flip: true }, ctx(0.99, 0.1)); // crop at (2, 2), then flip
    expect([...flipped.data]).toEqual([11, 10, 15, 14]);
    expect([...augmentImage.apply(image, { crop: [2, 2], flip: true }, ctx(0.99, 0.6)).data]).toEqual([10, 11, 14, 15]);
    const resized = augmentImage.apply(image, { resize: [2, 2] }, ctx(0));
    expect([...resized.data]).toEqual([3, 5, 11, 13]); // bilinear, half-pixel centres: means of 2×2 blocks
    expect(resized.label).toBe(3);
    expect(() => augmentImage.apply(image, { crop: [5, 5] }, ctx(0))).toThrow(/cannot crop 5×5 out of a 4×4 image/);
  });
});
