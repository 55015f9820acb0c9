import { DataError, type OnBadRecord, type SkippedRecord } from '../pipeline/data-error.js';
import type { DataSource, Sample } from '../pipeline/source.js';

/** Which fields are features and which one is the label, for CSV and JSON Lines sources. */
export interface TabularMapping {
  /** The label's column name (or 0-based column index for CSV) / JSON key. */
  label: string | number;
  /**
   * Feature columns (names or indices) / JSON keys in order, or for JSON Lines a single key
   * holding a numeric array. Default for CSV: every column except the label.
   */
  features?: (string | number)[] | string;
  /**
   * Label values in class-index order (e.g. ['setosa', 'versicolor', 'virginica']). Default:
   * labels that are all whole numbers are used as class indices; otherwise the distinct values, sorted.
   */
  classes?: string[];
  /** Bad rows: stop with an error naming file and line (default), or skip them and count. */
  onBadRow?: OnBadRecord;
}

export interface TabularSource extends DataSource<Sample> {
  readonly featureNames: readonly string[];
  /** Class names when labels were names; undefined when they were class indices already. */
  readonly classes: readonly string[] | undefined;
  readonly numClasses: number;
}

/** One parsed record before labels are resolved to class indices. */
export interface TabularRecord {
  features: number[];
  rawLabel: string;
  line: number;
}

/** Collects records, applying skip-or-fail, then packs them into one contiguous source. */
export class TabularBuilder {
  private readonly records: TabularRecord[] = [];
  readonly skipped: SkippedRecord[] = [];
  private featureCount: number | undefined;

  constructor(
    private readonly file: string,
    private readonly mapping: TabularMapping,
  ) {}

  /** Runs `parse`; a DataError it throws becomes a skipped record when the user asked for it. */
  add(line: number, parse: () => TabularRecord): void {
    try {
      const record = parse();
      this.featureCount ??= record.features.length;
      if (record.features.length !== this.featureCount) {
        throw new DataError(`${this.file}:${line}: ${record.features.length} features, but earlier rows have ${this.featureCount}. Every row needs the same features.`);
      }
      this.records.push(record);
    } catch (err) {
      if (!(err instanceof DataError) || this.mapping.onBadRow !== 'skip') throw err;
      this.skipped.push({ where: `${this.file}:${line}`, problem: err.message.replace(`${this.file}:${line}: `, '') });
    }
  }

  build(name: string, featureNames: string[]): TabularSource {
    const { file, mapping } = this;
    const width = this.featureCount ?? 0;
    const classes = mapping.classes ?? (this.records.every((r) => /^\d+$/.test(r.rawLabel)) ? undefined : [...new Set(this.records.map((r) => r.rawLabel))].sort());
    const kept: { record: TabularRecord; label: number }[] = [];
    for (const record of this.records) {
      const label = classes ? classes.indexOf(record.rawLabel) : Number(record.rawLabel);
      if (label < 0) {
        const problem = `label '${record.rawLabel}' is not one of the classes ${JSON.stringify(classes)}`;
        if (mapping.onBadRow !== 'skip') throw new DataError(`${file}:${record.line}: ${problem}. Fix the row, add the class, or pass onBadRow: 'skip'.`);
        this.skipped.push({ where: `${file}:${record.line}`, problem });
        continue;
      }
      kept.push({ record, label });
    }
    if (kept.length === 0) throw new DataError(`${file}: no usable rows${this.skipped.length ? ` (${this.skipped.length} skipped, first: ${this.skipped[0]!.where}: ${this.skipped[0]!.problem})` : ''}.`);
    const features = new Float32Array(kept.length * width);
    const labels = new Int32Array(kept.length);
    kept.forEach(({ record, label }, i) => {
      features.set(record.features, i * width);
      labels[i] = label;
    });
    const numClasses = classes ? classes.length : Math.max(...labels) + 1;
    return {
      name,
      size: kept.length,
      skipped: this.skipped,
      featureNames,
      classes,
      numClasses,
      read: (index) => ({ x: features.slice(index * width, (index + 1) * width), label: labels[index]! }),
    };
  }
}

/** A feature value as a number, or a DataError naming file, line and column. */
export function parseFeature(value: unknown, file: string, line: number, column: string): number {
  const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  if (!Number.isFinite(number)) {
    throw new DataError(`${file}:${line}: ${column} is ${JSON.stringify(value) ?? 'missing'}, not a number. Fix the row or pass onBadRow: 'skip'.`);
  }
  return number;
}
