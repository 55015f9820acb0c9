import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../shared/log/logger.js';
import type { TransferFile } from '../protocol/file-transfer.js';
import { checkpointFolderName, MANIFEST_FILE, stepOfFolder, TRAINING_STATE_FILE, UPLOADED_FILES } from './checkpoint-layout.js';
import { syncDirectory, writeFileSynced } from './durable-files.js';
import { buildManifest, manifestSchema, sha256, type Manifest } from './manifest.js';
import { trainingStateRecordSchema, type TrainingStateRecord } from './training-state-record.js';

export interface StoredCheckpoint {
  step: number;
  /** The checkpoint folder. */
  dir: string;
}

export interface LoadedCheckpoint extends StoredCheckpoint {
  manifest: Manifest;
  state: TrainingStateRecord;
  /** The uploaded files (model, optimizer), verified, ready to send to a peer. */
  files: TransferFile[];
}

const REQUIRED_FILES = [...UPLOADED_FILES, TRAINING_STATE_FILE];

/**
 * Checkpoints on the coordinator's disk, one folder per step. Writing is atomic: files go into a
 * hidden temporary folder, each fsynced, the manifest (sha256 of every file) last, then one rename
 * publishes the folder. Loading verifies every checksum and falls back to the previous checkpoint,
 * with a warning naming the bad file, when the newest one is corrupt or partial.
 */
export class CheckpointStore {
  private newest: StoredCheckpoint | undefined;

  constructor(
    readonly dir: string,
    private readonly keep: number,
    private readonly log: Logger,
  ) {}

  /** Creates the folder and removes leftovers of writes that a crash interrupted. */
  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const entry of await readdir(this.dir)) {
      if (entry.startsWith('.tmp-') || entry.startsWith('.old-')) {
        this.log.warn({ leftover: path.join(this.dir, entry) }, 'removing an unfinished checkpoint write from an earlier run');
        await rm(path.join(this.dir, entry), { recursive: true, force: true });
      }
    }
  }

  /** The newest checkpoint written or found so far. */
  get latest(): StoredCheckpoint | undefined {
    return this.newest;
  }

  async write(step: number, uploaded: readonly TransferFile[], state: TrainingStateRecord): Promise<StoredCheckpoint> {
    const files: TransferFile[] = [...uploaded, { name: TRAINING_STATE_FILE, data: utf8(JSON.stringify(state, null, 2)) }];
    const missing = REQUIRED_FILES.filter((name) => !files.some((file) => file.name === name));
    if (missing.length > 0) throw new Error(`checkpoint of step ${step} lacks ${missing.join(', ')}`);
    for (const file of files) assertSafeName(file.name);

    const name = checkpointFolderName(step);
    const final = path.join(this.dir, name);
    const tmp = path.join(this.dir, `.tmp-${name}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    try {
      const folders = new Set<string>([tmp]);
      for (const file of files) {
        const target = path.join(tmp, file.name);
        await mkdir(path.dirname(target), { recursive: true });
        folders.add(path.dirname(target));
        await writeFileSynced(target, file.data);
      }
      await writeFileSynced(path.join(tmp, MANIFEST_FILE), JSON.stringify(buildManifest(step, files), null, 2));
      for (const folder of folders) await syncDirectory(folder);
      // Work redone after a resume checkpoints the same step again: replace the old folder.
      const old = path.join(this.dir, `.old-${name}-${randomBytes(4).toString('hex')}`);
      const replaced = await exists(final);
      if (replaced) await rename(final, old);
      await rename(tmp, final);
      await syncDirectory(this.dir);
      if (replaced) await rm(old, { recursive: true, force: true });
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      throw error;
    }
    const written = { step, dir: final };
    if (!this.newest || step >= this.newest.step) this.newest = written;
    await this.prune();
    return written;
  }

  /** Checkpoint folders on disk, newest first (not verified). */
  async list(): Promise<StoredCheckpoint[]> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    return entries
      .map((entry) => ({ step: stepOfFolder(entry), dir: path.join(this.dir, entry) }))
      .filter((entry): entry is StoredCheckpoint => entry.step !== undefined)
      .sort((a, b) => b.step - a.step);
  }

  /**
   * The newest checkpoint that verifies. Every corrupt or partial one newer than it is reported
   * with a warning naming the file, and skipped (left on disk for inspection).
   */
  async loadNewestGood(): Promise<LoadedCheckpoint | undefined> {
    for (const candidate of await this.list()) {
      try {
        const loaded = await this.verify(candidate);
        this.newest = { step: loaded.step, dir: loaded.dir };
        return loaded;
      } catch (error) {
        this.log.warn({ checkpoint: candidate.dir }, `checkpoint ${candidate.dir} is unusable — ${(error as Error).message}; falling back to the previous checkpoint`);
      }
    }
    return undefined;
  }

  /** Reads a checkpoint and checks every file against the manifest; throws naming the first bad file. */
  async verify(checkpoint: StoredCheckpoint): Promise<LoadedCheckpoint> {
    const manifestPath = path.join(checkpoint.dir, MANIFEST_FILE);
    let manifestText: string;
    try {
      manifestText = await readFile(manifestPath, 'utf8');
    } catch {
      throw new Error(`${manifestPath} is missing (the write did not finish)`);
    }
    let manifest: Manifest;
    try {
      manifest = manifestSchema.parse(JSON.parse(manifestText));
    } catch (error) {
      throw new Error(`${manifestPath} is not a valid manifest (${(error as Error).message.split('\n')[0]})`);
    }
    if (manifest.step !== checkpoint.step) throw new Error(`${manifestPath} says step ${manifest.step}, the folder says ${checkpoint.step}`);
    for (const name of REQUIRED_FILES) {
      if (!manifest.files[name]) throw new Error(`${manifestPath} does not list ${name}`);
    }
    const contents = new Map<string, Uint8Array>();
    for (const [name, record] of Object.entries(manifest.files)) {
      assertSafeName(name);
      const file = path.join(checkpoint.dir, name);
      let data: Uint8Array;
      try {
        data = new Uint8Array(await readFile(file));
      } catch {
        throw new Error(`${file} is missing`);
      }
      if (data.byteLength !== record.bytes) throw new Error(`${file} has ${data.byteLength} bytes, the manifest says ${record.bytes} (truncated?)`);
      const actual = sha256(data);
      if (actual !== record.sha256) throw new Error(`${file} does not match its sha256 in the manifest (expected ${record.sha256.slice(0, 12)}…, got ${actual.slice(0, 12)}…)`);
      contents.set(name, data);
    }
    const statePath = path.join(checkpoint.dir, TRAINING_STATE_FILE);
    let state: TrainingStateRecord;
    try {
      state = trainingStateRecordSchema.parse(JSON.parse(Buffer.from(contents.get(TRAINING_STATE_FILE)!).toString('utf8')));
    } catch (error) {
      throw new Error(`${statePath} is not a valid training state (${(error as Error).message.split('\n')[0]})`);
    }
    if (state.step !== checkpoint.step) throw new Error(`${statePath} says step ${state.step}, the folder says ${checkpoint.step}`);
    const files = UPLOADED_FILES.map((name) => ({ name, data: contents.get(name)! }));
    return { ...checkpoint, manifest, state, files };
  }

  /** Keeps the newest `keep` checkpoints. */
  private async prune(): Promise<void> {
    const all = await this.list();
    for (const old of all.slice(this.keep)) {
      await rm(old.dir, { recursive: true, force: true });
      this.log.debug({ checkpoint: old.dir }, 'removed old checkpoint');
    }
  }
}

/** Uploaded names come from a peer: they must stay inside the checkpoint folder. */
function assertSafeName(name: string): void {
  const normal = path.posix.normalize(name);
  if (normal !== name || name.startsWith('/') || name.startsWith('..') || name.includes('\\') || name === MANIFEST_FILE) {
    throw new Error(`refusing checkpoint file name ${JSON.stringify(name)}`);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

function utf8(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}
