import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MANIFEST_FILE } from '../../checkpoint/checkpoint-layout.js';
import type { StoredCheckpoint } from '../../checkpoint/checkpoint-store.js';
import { manifestSchema, sha256 } from '../../checkpoint/manifest.js';
import type { CheckpointRow } from './view-types.js';

export interface CheckpointSource {
  list(): Promise<StoredCheckpoint[]>;
}

/**
 * The checkpoints on the coordinator's disk, newest first, described from their manifests. A
 * folder without a readable manifest is not (yet, or no longer) a checkpoint and is left out.
 * Manifests never change once written, so each is read once.
 */
export class CheckpointList {
  private readonly described = new Map<string, CheckpointRow>();
  private current: CheckpointRow[] = [];

  constructor(private readonly store: CheckpointSource) {}

  get rows(): CheckpointRow[] {
    return this.current;
  }

  /** The folder of a listed checkpoint, or undefined (downloads only serve what is listed). */
  folderOf(step: number): string | undefined {
    for (const [dir, row] of this.described) if (row.step === step && this.current.includes(row)) return dir;
    return undefined;
  }

  async refresh(): Promise<CheckpointRow[]> {
    const rows: CheckpointRow[] = [];
    const listed = await this.store.list();
    for (const checkpoint of listed) {
      const row = this.described.get(checkpoint.dir) ?? (await describe(checkpoint));
      if (!row) continue;
      this.described.set(checkpoint.dir, row);
      rows.push(row);
    }
    const kept = new Set(listed.map((checkpoint) => checkpoint.dir));
    for (const dir of this.described.keys()) if (!kept.has(dir)) this.described.delete(dir);
    this.current = rows;
    return rows;
  }
}

async function describe(checkpoint: StoredCheckpoint): Promise<CheckpointRow | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path.join(checkpoint.dir, MANIFEST_FILE));
  } catch {
    return undefined;
  }
  const parsed = manifestSchema.safeParse(safeJson(bytes.toString('utf8')));
  if (!parsed.success) return undefined;
  const files = Object.values(parsed.data.files);
  return {
    step: checkpoint.step,
    savedAt: parsed.data.createdAt,
    bytes: files.reduce((total, file) => total + file.bytes, 0),
    files: files.length,
    manifestSha256: sha256(bytes),
    downloadPath: `/api/checkpoints/${checkpoint.step}/download`,
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
