// Plain JavaScript on purpose: Node 20 worker threads do not inherit tsx's module hooks, so a
// worker cannot start from a .ts file. This registers tsx inside the worker, then loads the
// TypeScript entry named in workerData.entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
