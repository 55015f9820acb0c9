import type { SharedQueueMemory } from './shared-queue.js';

/** Records of the send queue: what to write to the next rank. */
export const SEND_RECORD = { width: 5, op: 0, frame: 1, bufferId: 2, byteOffset: 3, byteLength: 4 } as const;
/** Records of the receive queue: a frame sitting in a slot. */
export const RECEIVE_RECORD = { width: 4, op: 0, frame: 1, slot: 2, byteLength: 3 } as const;

export interface SendWorkerData {
  entry: string;
  role: 'send';
  host: string;
  deadline: number;
  queue: SharedQueueMemory;
  nextLabel: string;
}

export interface ReceiveWorkerData {
  entry: string;
  role: 'receive';
  host: string;
  port: number;
  token: string;
  deadline: number;
  queue: SharedQueueMemory;
  /** Receive slots: regions of shared memory (the main thread's ring arena). */
  slots: { buffer: SharedArrayBuffer; byteOffset: number; byteLength: number }[];
  maxFrameBytes: number;
}

/** Main → send worker. */
export type ToSendWorker = { type: 'buffer'; id: number; buffer: SharedArrayBuffer } | { type: 'close' };

/** Worker → main. */
export type FromWorker =
  | { type: 'offer'; port: number; token: string }
  | { type: 'connected' }
  | { type: 'failed'; kind: 'timeout' | 'link'; message: string };
