/**
 * The teacher's soft targets, kept compactly: for every training sample only the k largest teacher
 * logits (and their classes) plus one number for everything else — `tailLogMass`, the log of the
 * summed tempered weight of the other C − k classes, log Σ_{j∉top-k} exp(z_j / T).
 *
 * Rebuilding a full target distribution at temperature T:
 *   - the k kept classes get exactly the teacher's tempered probability exp(z_j/T − Z), where
 *     Z = log(Σ_{top-k} exp(z_j/T) + exp(tailLogMass)) is the teacher's full normaliser;
 *   - the remaining mass 1 − Σ_{top-k} p_j (exact, also from tailLogMass) is spread evenly over the
 *     other C − k classes, whose individual values were not kept.
 * So the target sums to 1, the top-k probabilities are the teacher's own (not inflated by
 * renormalising over k), and no class gets probability 0. With k = C it is the exact teacher.
 * Per sample this costs k·5 + 4 bytes (MNIST, k = 4: 24 bytes instead of 40 for all ten logits).
 */
export interface SoftTargetTable {
  numClasses: number;
  k: number;
  /** The temperature the tail masses were computed at (the round's T). */
  temperature: number;
  count: number;
  /** count × k class indices, largest logit first. */
  classes: Uint8Array;
  /** count × k raw teacher logits, matching `classes`. */
  logits: Float32Array;
  /** count values: log Σ_{j∉top-k} exp(z_j / T); −Infinity when k = numClasses. */
  tailLogMass: Float32Array;
}

export function emptyTable(count: number, numClasses: number, k: number, temperature: number): SoftTargetTable {
  checkShape(numClasses, k, temperature);
  return { numClasses, k, temperature, count, classes: new Uint8Array(count * k), logits: new Float32Array(count * k), tailLogMass: new Float32Array(count) };
}

function checkShape(numClasses: number, k: number, temperature: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 2 || numClasses > 256) throw new Error(`soft targets: numClasses must be 2–256, got ${numClasses}`);
  if (!Number.isInteger(k) || k < 1 || k > numClasses) throw new Error(`soft targets: k (top-k) must be a whole number from 1 to the ${numClasses} classes, got ${k}`);
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`soft targets: temperature must be > 0, got ${temperature}`);
}

/**
 * Top-k compression of `rows` teacher logit rows (row-major, numClasses each) into `table`,
 * starting at sample `first`.
 */
export function writeTopK(table: SoftTargetTable, first: number, logits: Float32Array): void {
  const { numClasses: c, k, temperature: t } = table;
  const rows = logits.length / c;
  if (!Number.isInteger(rows)) throw new Error(`soft targets: ${logits.length} logits are not whole rows of ${c} classes`);
  if (first < 0 || first + rows > table.count) throw new Error(`soft targets: rows ${first}..${first + rows} fall outside the table of ${table.count}`);
  const order = new Array<number>(c);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * c, (r + 1) * c);
    for (let j = 0; j < c; j++) order[j] = j;
    // Ties go to the lower class index, so every peer compresses identical logits identically.
    order.sort((a, b) => row[b]! - row[a]! || a - b);
    const at = (first + r) * k;
    for (let i = 0; i < k; i++) {
      table.classes[at + i] = order[i]!;
      table.logits[at + i] = row[order[i]!]!;
    }
    table.tailLogMass[first + r] = k === c ? -Infinity : logSumExp(order.slice(k).map((j) => row[j]! / t));
  }
}

/** The rebuilt teacher distributions at the table's temperature for `samples`, row-major (n × C). */
export function denseTargets(table: SoftTargetTable, samples: ArrayLike<number>): Float32Array {
  const { numClasses: c, k, temperature: t } = table;
  const out = new Float32Array(samples.length * c);
  const scaled = new Array<number>(k + 1);
  for (let r = 0; r < samples.length; r++) {
    const sample = samples[r]!;
    if (!(sample >= 0 && sample < table.count)) throw new Error(`soft targets: sample ${sample} is not in the table of ${table.count}`);
    for (let i = 0; i < k; i++) scaled[i] = table.logits[sample * k + i]! / t;
    const tail = table.tailLogMass[sample]!;
    scaled[k] = tail;
    const z = logSumExp(scaled);
    const row = out.subarray(r * c, (r + 1) * c);
    if (k < c) row.fill(Math.exp(tail - z) / (c - k));
    for (let i = 0; i < k; i++) row[table.classes[sample * k + i]!] = Math.exp(scaled[i]! - z);
  }
  return out;
}

function logSumExp(values: number[]): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/** Bytes per sample in the table (the compact form's cost). */
export function bytesPerSample(k: number): number {
  return k * (1 + 4) + 4;
}

const MAGIC = 'ringpipe-soft-targets-1';

/**
 * One self-describing byte string (for disk and the wire): a length-prefixed JSON header, then the
 * logits, tail masses and classes, each 4-byte aligned.
 */
export function encodeTable(table: SoftTargetTable): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({ magic: MAGIC, numClasses: table.numClasses, k: table.k, temperature: table.temperature, count: table.count }));
  const headerBytes = align4(4 + header.byteLength);
  const logitsBytes = table.logits.byteLength;
  const tailBytes = table.tailLogMass.byteLength;
  const out = new Uint8Array(headerBytes + logitsBytes + tailBytes + table.classes.byteLength);
  new DataView(out.buffer).setUint32(0, header.byteLength, true);
  out.set(header, 4);
  out.set(new Uint8Array(table.logits.buffer, table.logits.byteOffset, logitsBytes), headerBytes);
  out.set(new Uint8Array(table.tailLogMass.buffer, table.tailLogMass.byteOffset, tailBytes), headerBytes + logitsBytes);
  out.set(table.classes, headerBytes + logitsBytes + tailBytes);
  return out;
}

export function decodeTable(bytes: Uint8Array, source = 'soft targets'): SoftTargetTable {
  const fail = (why: string): never => {
    throw new Error(`${source} is not a soft-target table: ${why}`);
  };
  if (bytes.byteLength < 4) fail(`only ${bytes.byteLength} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, true);
  if (4 + headerLength > bytes.byteLength) fail('header longer than the data');
  let header: { magic?: unknown; numClasses?: unknown; k?: unknown; temperature?: unknown; count?: unknown };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as typeof header;
  } catch {
    return fail('unreadable header');
  }
  if (header.magic !== MAGIC) fail(`unknown format ${JSON.stringify(header.magic)}`);
  const { numClasses, k, temperature, count } = header as { numClasses: number; k: number; temperature: number; count: number };
  if (!Number.isInteger(count) || count < 0) fail(`bad sample count ${count}`);
  checkShape(numClasses, k, temperature);
  const start = align4(4 + headerLength);
  const expected = start + count * k * 4 + count * 4 + count * k;
  if (bytes.byteLength !== expected) fail(`${bytes.byteLength} bytes, expected ${expected} for ${count} samples with k = ${k}`);
  // Copies: the arrays must be aligned and must not pin the (possibly larger) receive buffer.
  const copy = bytes.slice(start);
  const logits = new Float32Array(copy.buffer, 0, count * k);
  const tailLogMass = new Float32Array(copy.buffer, count * k * 4, count);
  const classes = new Uint8Array(copy.buffer, count * k * 4 + count * 4, count * k);
  for (let i = 0; i < classes.length; i++) if (classes[i]! >= numClasses) fail(`class ${classes[i]} at ${i} is not below ${numClasses}`);
  return { numClasses, k, temperature, count, classes, logits, tailLogMass };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
