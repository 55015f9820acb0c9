import path from 'node:path';
import { DataError } from '../pipeline/data-error.js';
import { readText } from './csv-source.js';
import { parseFeature, TabularBuilder, type TabularMapping, type TabularSource } from './tabular-mapping.js';

/**
 * A JSON Lines file (one JSON object per line) as a source of samples. `features` lists the keys
 * holding numbers, or names one key holding a numeric array. Blank lines are allowed.
 */
export async function jsonLinesSource(file: string, options: TabularMapping & { features: (string | number)[] | string }): Promise<TabularSource> {
  const lines = (await readText(file)).split(/\r?\n/);
  const builder = new TabularBuilder(file, options);
  const labelKey = String(options.label);
  const arrayKey = typeof options.features === 'string' ? options.features : undefined;
  const keys = typeof options.features === 'string' ? [] : options.features.map(String);
  let width = 0;
  lines.forEach((text, i) => {
    const line = i + 1;
    if (text.trim() === '') return;
    builder.add(line, () => {
      let record: unknown;
      try {
        record = JSON.parse(text);
      } catch (err) {
        throw new DataError(`${file}:${line}: not valid JSON (${(err as Error).message}). Fix the line or pass onBadRow: 'skip'.`);
      }
      if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new DataError(`${file}:${line}: expected a JSON object per line. Fix the line or pass onBadRow: 'skip'.`);
      const fields = record as Record<string, unknown>;
      let features: number[];
      if (arrayKey !== undefined) {
        const values = fields[arrayKey];
        if (!Array.isArray(values)) throw new DataError(`${file}:${line}: key ${JSON.stringify(arrayKey)} must hold an array of numbers, got ${JSON.stringify(values) ?? 'nothing'}. Fix the line or pass onBadRow: 'skip'.`);
        features = values.map((v, j) => parseFeature(v, file, line, `${arrayKey}[${j}]`));
        width = features.length;
      } else {
        features = keys.map((k) => parseFeature(fields[k], file, line, `key ${JSON.stringify(k)}`));
      }
      const label = fields[labelKey];
      if (typeof label !== 'string' && typeof label !== 'number') {
        throw new DataError(`${file}:${line}: label key ${JSON.stringify(labelKey)} must hold a string or a number, got ${JSON.stringify(label) ?? 'nothing'}. Fix the line or pass onBadRow: 'skip'.`);
      }
      return { features, rawLabel: String(label), line };
    });
  });
  const featureNames = arrayKey !== undefined ? Array.from({ length: width }, (_, j) => `${arrayKey}[${j}]`) : keys;
  return builder.build(`jsonl:${path.resolve(file)}`, featureNames);
}
