/**
 * An input problem a user can fix: a malformed row, an undecodable file, a sample of the wrong
 * shape. The message always names where (file, and line when there is one) and what to do.
 */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/** `file:line: problem` — the location format editors and terminals make clickable. */
export function locate(file: string, line?: number): string {
  return line === undefined ? file : `${file}:${line}`;
}

/** What to do with a bad record: stop with a clear error (default), or skip it and count it. */
export type OnBadRecord = 'error' | 'skip';

/** One record a source or a transform skipped because the user asked for skip-and-count. */
export interface SkippedRecord {
  /** Where: `file:line` for rows, the file for images. */
  where: string;
  problem: string;
}
