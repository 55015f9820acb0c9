import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../pipeline/data-error.js';
import { parseCsvRows } from './csv-rows.js';
import { parseFeature, TabularBuilder, type TabularMapping, type TabularSource } from './tabular-mapping.js';

export interface CsvOptions extends TabularMapping {
  /** The first row names the columns (default true). Without it, columns are referred to by index. */
  header?: boolean;
  delimiter?: string;
}

/** A CSV file as a source of samples, parsed and checked when opened. */
export async function csvSource(file: string, options: CsvOptions): Promise<TabularSource> {
  const text = await readText(file);
  const rows = parseCsvRows(text, file, options.delimiter ?? ',');
  const hasHeader = options.header ?? true;
  const headerRow = hasHeader ? rows.shift() : undefined;
  if (hasHeader && !headerRow) throw new DataError(`${file}: the file is empty; expected a header row naming the columns.`);
  const columnCount = headerRow?.fields.length ?? rows[0]?.fields.length ?? 0;
  const names = headerRow?.fields ?? Array.from({ length: columnCount }, (_, i) => String(i));
  const headerLine = headerRow?.line ?? 1;

  const columnIndex = (ref: string | number, role: string): number => {
    const index = typeof ref === 'number' ? ref : names.indexOf(ref);
    if (index < 0 || index >= columnCount) {
      throw new DataError(`${file}:${headerLine}: ${role} column ${JSON.stringify(ref)} not found; the columns are ${names.map((n) => JSON.stringify(n)).join(', ')}.`);
    }
    return index;
  };
  const labelColumn = columnIndex(options.label, 'label');
  if (typeof options.features === 'string') throw new Error(`csvSource(${file}): features must be a list of columns, got the single name ${JSON.stringify(options.features)}`);
  const featureColumns = options.features ? options.features.map((f) => columnIndex(f, 'feature')) : names.map((_, i) => i).filter((i) => i !== labelColumn);

  const builder = new TabularBuilder(file, options);
  for (const row of rows) {
    builder.add(row.line, () => {
      if (row.fields.length !== columnCount) {
        throw new DataError(`${file}:${row.line}: ${row.fields.length} columns, expected ${columnCount}${hasHeader ? ' as in the header' : ''}. Fix the row or pass onBadRow: 'skip'.`);
      }
      const features = featureColumns.map((c) => parseFeature(row.fields[c], file, row.line, `column ${JSON.stringify(names[c])}`));
      const rawLabel = row.fields[labelColumn]!.trim();
      if (rawLabel === '') throw new DataError(`${file}:${row.line}: the label column ${JSON.stringify(names[labelColumn])} is empty. Fix the row or pass onBadRow: 'skip'.`);
      return { features, rawLabel, line: row.line };
    });
  }
  return builder.build(`csv:${path.resolve(file)}`, featureColumns.map((c) => names[c]!));
}

export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new DataError(`${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)}). Check the path.`);
  }
}
