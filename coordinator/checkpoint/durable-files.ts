import { open } from 'node:fs/promises';

/**
 * Writing that survives a crash or power loss: data reaches the disk (fsync) before the rename
 * that makes it visible, and the folder itself is synced so the rename is durable too.
 */
export async function writeFileSynced(file: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync a directory, so entries created or renamed in it are on disk. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
