/**
 * Body of a data worker thread: receives chunks of samples, runs the map stages on them and
 * sends the results back, moving (not copying) their typed arrays. The thread serves every
 * pipeline of the process one after another (see WorkerPool); each task names its pipeline's lease.
 */
import { parentPort } from 'node:worker_threads';
import { runStages, type ItemOutcome, type StageSpec, type WorkItem } from './run-stages.js';
import { importTransform, type JsonValue, type Transform } from './transform.js';
import { packOutcomes, type PackedOutcomes } from './packed-samples.js';
import { prepareTransfer } from './transferables.js';

export interface MapTaskMessage {
  id: number;
  /** The pipeline (lease of the pool) the task belongs to. */
  lease: number;
  epoch: number;
  stages: StageSpec[];
  items: WorkItem[];
  /** These maps are the last stage before batch(): hand the samples back packed (see packed-samples.ts). */
  pack: boolean;
}

/** A pipeline was closed: drop its queued tasks (answered `dropped`); the task in hand finishes. */
export interface CancelMessage {
  cancel: number;
}

export type MapReplyMessage = { id: number; outcomes: ItemOutcome[] } | { id: number; packed: PackedOutcomes } | { id: number; failure: string } | { id: number; dropped: true };

const loaded = new Map<string, Promise<Transform<unknown, unknown, JsonValue>>>();

function load(stage: StageSpec): Promise<Transform<unknown, unknown, JsonValue>> {
  const key = `${stage.moduleUrl}#${stage.exportName}`;
  let transform = loaded.get(key);
  if (!transform) {
    loaded.set(key, (transform = importTransform(stage.moduleUrl, stage.exportName)));
    // The thread outlives this pipeline: a module that failed to load is tried again by the next one.
    transform.catch(() => loaded.delete(key));
  }
  return transform;
}

const port = parentPort;
if (!port) throw new Error('transform-worker.ts runs only as a worker thread (started by WorkerPool)');

async function handle(task: MapTaskMessage): Promise<void> {
  let reply: MapReplyMessage;
  try {
    const transforms = await Promise.all(task.stages.map(load));
    const outcomes = runStages(task.stages, transforms, task.epoch, task.items);
    const packed = task.pack ? packOutcomes(outcomes) : undefined;
    reply = packed ? { id: task.id, packed } : { id: task.id, outcomes };
  } catch (err) {
    reply = { id: task.id, failure: err instanceof Error ? err.message : String(err) };
  }
  const { transfer } = prepareTransfer(reply);
  port!.postMessage(reply, transfer);
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

// Tasks are handled strictly in arrival order: `chain` serialises the async module loading.
let chain = Promise.resolve();
const cancelled = new Set<number>();
port.on('message', (message: MapTaskMessage | CancelMessage) => {
  if ('cancel' in message) {
    // Seen at once (not queued): the tasks of that pipeline still waiting in `chain` are dropped.
    cancelled.add(message.cancel);
    return;
  }
  // A turn of the event loop before each task, so that a cancel message queued meanwhile is seen
  // and the tasks behind it are dropped rather than started.
  chain = chain.then(nextTurn).then(() => {
    if (cancelled.has(message.lease)) {
      port.postMessage({ id: message.id, dropped: true } satisfies MapReplyMessage);
      return undefined;
    }
    return handle(message);
  });
});
