// FusedAdam must be a drop-in for tf.train.adam: the same weights bit for bit, step after step,
// on the backends ringpipe trains with, and no tensors left behind.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterEach, describe, expect, it } from 'vitest';
import { FusedAdam } from '../shared/engine/fused-adam.js';

/** Deterministic values spanning many magnitudes, with zeros and signs (Adam amplifies tiny ones). */
function values(n: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const u = state / 2 ** 32;
    out[i] = i % 17 === 0 ? 0 : (u - 0.5) * 10 ** ((i % 9) - 6);
  }
  return out;
}

const bits = (t: tf.Tensor): number[] => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

let created: tf.Variable[] = [];
afterEach(() => {
  tf.dispose(created);
  created = [];
});

function variables(prefix: string, shapes: number[][]): tf.Variable[] {
  const made = shapes.map((shape, i) => tf.variable(tf.tensor(values(shape.reduce((a, b) => a * b, 1), 7 + i), shape), true, `${prefix}/${i}`));
  created.push(...made);
  return made;
}

function step(optimizer: tf.Optimizer, vars: tf.Variable[], seed: number): void {
  const grads: tf.NamedTensorMap = {};
  vars.forEach((v, i) => (grads[v.name] = tf.tensor(values(v.size, seed * 31 + i), v.shape)));
  optimizer.applyGradients(grads);
  tf.dispose(grads);
}

/** FusedAdam with the WebAssembly SIMD kernel, or with the plain JS loop (RINGPIPE_NO_SIMD). */
function fusedAdam(kernel: 'wasm-simd' | 'js', ...args: ConstructorParameters<typeof FusedAdam>): FusedAdam {
  const saved = process.env.RINGPIPE_NO_SIMD;
  if (kernel === 'js') process.env.RINGPIPE_NO_SIMD = '1';
  try {
    const optimizer = new FusedAdam(...args);
    expect(optimizer.kernel).toBe(kernel);
    return optimizer;
  } finally {
    if (saved === undefined) delete process.env.RINGPIPE_NO_SIMD;
    else process.env.RINGPIPE_NO_SIMD = saved;
  }
}

describe.each([
  ['wasm', 'wasm-simd'],
  ['cpu', 'wasm-simd'],
  ['wasm', 'js'],
] as const)('FusedAdam on the %s backend, %s kernel', (backend, kernel) => {
  it('gives the same weights as tf.train.adam, bit for bit, over many steps', async () => {
    await tf.setBackend(backend);
    const shapes = [[33, 17], [17], [17, 5], [5]];
    const ours = variables(`fused-${backend}-${kernel}`, shapes);
    const theirs = variables(`tfjs-${backend}-${kernel}`, shapes);
    const fused = fusedAdam(kernel, 0.01);
    const reference = tf.train.adam(0.01);
    const tensorsBefore = tf.memory().numTensors;
    for (let s = 1; s <= 25; s++) {
      step(fused, ours, s);
      step(reference, theirs, s);
    }
    ours.forEach((v, i) => expect(bits(v)).toEqual(bits(theirs[i]!)));
    // The reference holds 2 moment variables per weight (+ 2 scalars); we hold none.
    expect(tf.memory().numTensors).toBeLessThanOrEqual(tensorsBefore + 2 * shapes.length + 2);
    fused.dispose();
    reference.dispose();
  });

  it('keeps every weight when its memory grows for the next variable (layers of the mlp size)', async () => {
    await tf.setBackend(backend);
    const shapes = [[784, 512], [512], [512, 256], [256]];
    const ours = variables(`grow-${backend}-${kernel}`, shapes);
    const theirs = variables(`grow-tfjs-${backend}-${kernel}`, shapes);
    const fused = fusedAdam(kernel, 0.01);
    const reference = tf.train.adam(0.01);
    for (let s = 1; s <= 2; s++) {
      step(fused, ours, s);
      step(reference, theirs, s);
      // Read after every step, as the next forward pass does.
      ours.forEach((v, i) => expect(bits(v), `${v.name} after step ${s}`).toEqual(bits(theirs[i]!)));
    }
    fused.dispose();
    reference.dispose();
  });

  it('starts from values assigned by someone else (a broadcast, a restore)', async () => {
    await tf.setBackend(backend);
    const [ours] = variables(`fused-assigned-${backend}-${kernel}`, [[41]]);
    const [theirs] = variables(`tfjs-assigned-${backend}-${kernel}`, [[41]]);
    const fused = fusedAdam(kernel, 0.001, 0.8, 0.99);
    const reference = tf.train.adam(0.001, 0.8, 0.99);
    step(fused, [ours!], 1);
    step(reference, [theirs!], 1);
    const replacement = tf.tensor(values(41, 99));
    ours!.assign(replacement);
    theirs!.assign(replacement);
    replacement.dispose();
    for (let s = 2; s <= 6; s++) {
      step(fused, [ours!], s);
      step(reference, [theirs!], s);
    }
    expect(bits(ours!)).toEqual(bits(theirs!));
    fused.dispose();
    reference.dispose();
  });

  it('applies gradients from one flat buffer exactly as from tensors, skipping control entries', async () => {
    await tf.setBackend(backend);
    const shapes = [[9, 7], [7], [7, 3]];
    const ours = variables(`flat-${backend}-${kernel}`, shapes);
    const theirs = variables(`tensors-${backend}-${kernel}`, shapes);
    const flatAdam = fusedAdam(kernel, 0.01);
    const tensorAdam = fusedAdam(kernel, 0.01);
    // Gradients end to end with a control value in between, as the data-parallel exchange lays them out.
    const entries: { name: string; offset: number; size: number; control?: boolean }[] = [];
    let offset = 0;
    ours.forEach((v, i) => {
      entries.push({ name: v.name, offset, size: v.size });
      offset += v.size;
      if (i === 0) entries.push({ name: 'control', offset: offset++, size: 1, control: true });
    });
    const buffer = new Float32Array(offset);
    for (let s = 1; s <= 5; s++) {
      ours.forEach((v, i) => buffer.set(values(v.size, s * 31 + i), entries.find((e) => e.name === v.name)!.offset));
      buffer[entries.find((e) => e.control)!.offset] = 1e9;
      flatAdam.applyFlatGradients({ values: buffer, entries });
      step(tensorAdam, theirs, s);
    }
    ours.forEach((v, i) => expect(bits(v)).toEqual(bits(theirs[i]!)));
    expect(() => flatAdam.applyFlatGradients({ values: buffer.subarray(0, 10), entries })).toThrow(/past the buffer/);
    flatAdam.dispose();
    tensorAdam.dispose();
  });

  it('takes a sharded step (regions cut inside variables, off the 4-float grid) with the same bits as a whole one', async () => {
    await tf.setBackend(backend);
    const shapes = [[9, 7], [7], [7, 3]];
    const ours = variables(`sharded-${backend}-${kernel}`, shapes);
    const theirs = variables(`whole-${backend}-${kernel}`, shapes);
    const shardedAdam = fusedAdam(kernel, 0.01);
    const wholeAdam = fusedAdam(kernel, 0.01);
    const entriesOf = (vars: tf.Variable[]) => {
      let offset = 0;
      return vars.map((v) => ({ name: v.name, offset: (offset += v.size) - v.size, size: v.size }));
    };
    const [shardedEntries, wholeEntries] = [entriesOf(ours), entriesOf(theirs)];
    // As two ranks' segments, each finished in two chunks (the ring's onSegmentReduced calls).
    const cuts = [0, 13, 45, 66, 91];
    for (let s = 1; s <= 6; s++) {
      const gradients = values(91, s * 17);
      const buffer = gradients.slice();
      const step = shardedAdam.beginShardedStep(shardedEntries);
      for (let c = 0; c + 1 < cuts.length; c++) step.update(buffer, { start: cuts[c]!, end: cuts[c + 1]! });
      step.finish(buffer);
      wholeAdam.applyFlatGradients({ values: gradients, entries: wholeEntries });
      ours.forEach((v, i) => expect(bits(v), `${v.name} after step ${s}`).toEqual(bits(theirs[i]!)));
      // The buffer now holds the updated weights (what the all-gather shares).
      expect(Array.from(new Uint32Array(buffer.buffer))).toEqual(theirs.flatMap((v) => bits(v)));
    }
    // Back to whole steps: the weights outside the regions it updated come from the variables.
    for (let s = 7; s <= 8; s++) {
      const gradients = values(91, s * 17);
      shardedAdam.applyFlatGradients({ values: gradients, entries: shardedEntries });
      wholeAdam.applyFlatGradients({ values: gradients, entries: wholeEntries });
    }
    ours.forEach((v, i) => expect(bits(v)).toEqual(bits(theirs[i]!)));
    shardedAdam.dispose();
    wholeAdam.dispose();
  });
});

it('says what to use instead when asked for optimizer state', async () => {
  await expect(new FusedAdam(0.001).getWeights()).rejects.toThrow(/tf\.train\.adam/);
});
