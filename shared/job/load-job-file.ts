import { readFile } from 'node:fs/promises';

/** Reads a JSON job file, with errors that say which file and where it is broken. */
export async function readJobFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read job file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`job file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`job file ${file} must hold a JSON object like {"model": "mlp", "epochs": 1}`);
  }
  return value as Record<string, unknown>;
}
