import { DataError } from '../pipeline/data-error.js';

export interface CsvRow {
  fields: string[];
  /** 1-based line on which the row starts (a quoted field may span lines). */
  line: number;
}

/**
 * RFC 4180 CSV: quoted fields with `""` escapes and embedded delimiters or newlines, CRLF or LF.
 * Blank lines are skipped. tfjs-data has a CSV reader too, but it streams without line numbers,
 * which the error messages here must give.
 */
export function parseCsvRows(text: string, file: string, delimiter = ','): CsvRow[] {
  const rows: CsvRow[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let rowLine = 1;
  let quoted = false;
  let afterQuote = false;
  let quoteLine = 0;
  const endRow = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '' && !afterQuote)) rows.push({ fields, line: rowLine });
    fields = [];
    field = '';
    afterQuote = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
          afterQuote = true;
        }
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === delimiter) {
      fields.push(field);
      field = '';
      afterQuote = false;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else if (afterQuote) {
      throw new DataError(`${file}:${line}: unexpected '${c}' after a closing quote. Quote the whole field and double any quote inside it ("like ""this""").`);
    } else if (c === '"' && field === '') {
      quoted = true;
      quoteLine = line;
    } else {
      field += c;
    }
  }
  if (quoted) throw new DataError(`${file}:${quoteLine}: a quoted field is never closed. Add the closing quote.`);
  if (field !== '' || fields.length > 0 || afterQuote) endRow();
  return rows;
}
