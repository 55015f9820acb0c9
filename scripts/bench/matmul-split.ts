/**
 * Could a second thread speed up one peer's matmuls on a 2-core machine? The wasm backend in
 * Node is single-threaded (its threaded build does not initialise in Node), so the only way is a
 * worker thread with its own wasm backend, operands copied to it through SharedArrayBuffers.
 *
 *   npx tsx scripts/bench/matmul-split.ts [--rounds 9]
 *
 * For each product shape of the MNIST models, side by side in one run (alternating, medians):
 * the whole product on the main thread, and the product split by rows between the main thread
 * and the worker (copies and signalling included). Prints the result check too.
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../shared/engine/wasm-kernels/index.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '9' } } });
const rounds = Number(values.rounds);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

await tf.setBackend('wasm');
await tf.ready();
registerWasmTrainingKernels();

/** Worker threads do not inherit tsx's loader: register it, then load the TypeScript worker. */
const WORKER_BOOTSTRAP = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(new URL('./matmul-split-worker.ts', import.meta.url).href)}); });`;

/** [rows, inner, cols] of the heaviest products in a training step. */
const SHAPES: [string, number, number, number][] = [
  ['mlp 784→512 forward', 128, 784, 512],
  ['mlp 784→512 weight gradient', 784, 128, 512],
  ['cnn 1600→128 forward', 128, 1600, 128],
  ['cnn conv2 filter gradient (im2col)', 288, 15488, 64],
];

console.log(`matmul on the main thread vs split by rows with one worker thread; ${rounds} rounds, median ms (wall), load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores`);
console.log('| product [rows×inner]·[inner×cols] | one thread | main + worker | max rel. difference |');
console.log('|---|---:|---:|---:|');
for (const [name, rows, inner, cols] of SHAPES) {
  const workerRows = Math.floor(rows / 2);
  const mainRows = rows - workerRows;
  const buffers = {
    signalBuffer: new SharedArrayBuffer(4),
    aBuffer: new SharedArrayBuffer(workerRows * inner * 4),
    bBuffer: new SharedArrayBuffer(inner * cols * 4),
    outBuffer: new SharedArrayBuffer(workerRows * cols * 4),
  };
  const worker = new Worker(WORKER_BOOTSTRAP, { eval: true, workerData: { ...buffers, rows: workerRows, inner, cols } });
  await new Promise((resolve) => worker.once('message', resolve));
  const signal = new Int32Array(buffers.signalBuffer);
  const aShared = new Float32Array(buffers.aBuffer);
  const bShared = new Float32Array(buffers.bBuffer);
  const outShared = new Float32Array(buffers.outBuffer);

  const a = tf.randomNormal([rows, inner]);
  const b = tf.randomNormal([inner, cols]);
  const aValues = a.dataSync() as Float32Array;
  const bValues = b.dataSync() as Float32Array;

  const oneThread = (): Float32Array => {
    // A fresh b each time, as in training (weights and gradients change every step).
    const product = tf.tidy(() => tf.matMul(a, tf.add(b, 0)));
    const values = product.dataSync() as Float32Array;
    product.dispose();
    return values;
  };
  const split = (): Float32Array => {
    aShared.set(aValues.subarray(mainRows * inner));
    bShared.set(bValues);
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
    const top = tf.tidy(() => tf.matMul(tf.slice(a, [0, 0], [mainRows, inner]), tf.add(b, 0)));
    const out = new Float32Array(rows * cols);
    out.set(top.dataSync());
    top.dispose();
    Atomics.wait(signal, 0, 1);
    out.set(outShared, mainRows * cols);
    Atomics.store(signal, 0, 0);
    Atomics.notify(signal, 0);
    return out;
  };

  const times = { one: [] as number[], split: [] as number[] };
  let difference = 0;
  for (let round = 0; round <= rounds; round++) {
    const t0 = performance.now();
    const reference = oneThread();
    const t1 = performance.now();
    const parallel = split();
    const t2 = performance.now();
    if (round === 0) continue; // warm-up
    times.one.push(t1 - t0);
    times.split.push(t2 - t1);
    let maxDiff = 0;
    let maxRef = 0;
    for (let i = 0; i < reference.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(parallel[i]! - reference[i]!));
      maxRef = Math.max(maxRef, Math.abs(reference[i]!));
    }
    difference = Math.max(difference, maxDiff / maxRef);
  }
  Atomics.store(signal, 0, 3);
  Atomics.notify(signal, 0);
  await worker.terminate();
  tf.dispose([a, b]);
  console.log(`| ${name} [${rows}×${inner}]·[${inner}×${cols}] | ${median(times.one).toFixed(1)} | ${median(times.split).toFixed(1)} | ${difference.toExponential(1)} |`);
}
