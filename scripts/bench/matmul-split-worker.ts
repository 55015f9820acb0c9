/**
 * Worker thread for scripts/bench/matmul-split.ts: its own tfjs wasm backend multiplies the rows
 * of A it is handed by B. Operands and result travel through SharedArrayBuffers (a wasm heap
 * cannot be shared here); Atomics signal "go" and "done".
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../shared/engine/wasm-kernels/index.js';

interface Shared {
  signal: Int32Array; // [0]: 1 = go, 2 = done, 3 = quit
  a: Float32Array; // the worker's rows of A
  b: Float32Array;
  out: Float32Array;
  rows: number;
  inner: number;
  cols: number;
}

await tf.setBackend('wasm');
await tf.ready();
registerWasmTrainingKernels();
const { signalBuffer, aBuffer, bBuffer, outBuffer, rows, inner, cols } = workerData as {
  signalBuffer: SharedArrayBuffer;
  aBuffer: SharedArrayBuffer;
  bBuffer: SharedArrayBuffer;
  outBuffer: SharedArrayBuffer;
  rows: number;
  inner: number;
  cols: number;
};
const shared: Shared = {
  signal: new Int32Array(signalBuffer),
  a: new Float32Array(aBuffer),
  b: new Float32Array(bBuffer),
  out: new Float32Array(outBuffer),
  rows,
  inner,
  cols,
};
parentPort!.postMessage('ready');
for (;;) {
  Atomics.wait(shared.signal, 0, 0);
  if (Atomics.load(shared.signal, 0) === 3) break;
  const product = tf.tidy(() => tf.matMul(tf.tensor2d(shared.a, [shared.rows, shared.inner]), tf.tensor2d(shared.b, [shared.inner, shared.cols])));
  shared.out.set(product.dataSync());
  product.dispose();
  Atomics.store(shared.signal, 0, 2);
  Atomics.notify(shared.signal, 0);
  Atomics.wait(shared.signal, 0, 2); // parent resets to 0 (next) or 3 (quit)
  if (Atomics.load(shared.signal, 0) === 3) break;
}
