import type { ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { create } from 'tar';
import { startStream } from './responses.js';

/**
 * Streams a checkpoint folder as `<folder>.tar.gz` (node-tar): model, optimizer, training state and
 * manifest, so `tar xzf` gives back the folder exactly as the coordinator holds it.
 */
export async function streamCheckpoint(response: ServerResponse, folder: string): Promise<void> {
  const name = path.basename(folder);
  startStream(response, 'application/gzip', { 'content-disposition': `attachment; filename="${name}.tar.gz"` });
  await pipeline(create({ gzip: true, cwd: path.dirname(folder), portable: true }, [name]), response);
}
