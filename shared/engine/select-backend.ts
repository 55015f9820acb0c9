import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BACKEND_CANDIDATES, type BackendCandidate, type BackendFlag } from './backend-candidates.js';
import { classifyLoadError } from './classify-load-error.js';
import { registerWasmTrainingKernels } from './wasm-kernels/index.js';

export interface BackendAttempt {
  flag: BackendFlag;
  available: boolean;
  /** Why this backend was not used (absent when it was chosen). */
  reason?: string;
}

export interface BackendSelection {
  flag: BackendFlag;
  tfName: string;
  forced: boolean;
  /** Every backend tried, best first, up to and including the chosen one. */
  attempts: BackendAttempt[];
  /** Training kernels ringpipe registered to fill gaps in the chosen backend. */
  addedKernels: string[];
}

export interface SelectBackendOptions {
  /** Use exactly this backend or fail (the `--backend` flag). */
  force?: BackendFlag;
  /**
   * Directory from which backend packages are resolved. Defaults to this project; tests point it
   * at a folder with fake half-installed packages.
   */
  resolveFrom?: string;
}

export class BackendUnavailableError extends Error {
  constructor(flag: BackendFlag, reason: string) {
    super(`--backend ${flag} was requested but is not available: ${reason}. Choose another with --backend (node-gpu, node, wasm, cpu) or leave it unset to pick the best available.`);
    this.name = 'BackendUnavailableError';
  }
}

type Loader = (candidate: BackendCandidate) => Promise<void>;

function packageLoader(resolveFrom: string): Loader {
  const require = createRequire(path.join(resolveFrom, 'noop.js'));
  return async (candidate) => {
    if (candidate.packageName) require(candidate.packageName);
    // The package registers its backend with the shared tfjs-core on import; activate it to be sure it
    // can actually initialise (wasm compiles its module here, tfjs-node opens libtensorflow).
    if (!tf.findBackendFactory(candidate.tfName)) {
      throw new Error(`${candidate.packageName ?? candidate.tfName} loaded but registered no '${candidate.tfName}' backend (is it a different @tensorflow/tfjs version than ${tf.version.tfjs}?)`);
    }
    const ok = await tf.setBackend(candidate.tfName);
    if (!ok) throw new Error(`backend '${candidate.tfName}' failed to initialise`);
    await tf.ready();
  };
}

const DEFAULT_RESOLVE_FROM = path.dirname(new URL(import.meta.url).pathname);

/**
 * Picks the tensor engine: the best of node-gpu → node → wasm → cpu that loads, or exactly the
 * forced one. Returns, for the log, why each better engine was passed over.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendSelection> {
  const load = packageLoader(options.resolveFrom ?? DEFAULT_RESOLVE_FROM);
  const candidates = options.force ? BACKEND_CANDIDATES.filter((c) => c.flag === options.force) : BACKEND_CANDIDATES;
  if (candidates.length === 0) throw new Error(`unknown backend '${options.force}'`);
  const attempts: BackendAttempt[] = [];
  for (const candidate of candidates) {
    try {
      await load(candidate);
    } catch (err) {
      const reason = candidate.packageName ? classifyLoadError(candidate.packageName, err).reason : String(err);
      attempts.push({ flag: candidate.flag, available: false, reason });
      if (options.force) throw new BackendUnavailableError(candidate.flag, reason);
      continue;
    }
    attempts.push({ flag: candidate.flag, available: true });
    const addedKernels = candidate.tfName === 'wasm' ? registerWasmTrainingKernels() : [];
    return { flag: candidate.flag, tfName: candidate.tfName, forced: Boolean(options.force), attempts, addedKernels };
  }
  // Unreachable in practice: the cpu backend ships inside @tensorflow/tfjs.
  throw new Error(`no tensor backend could be loaded: ${attempts.map((a) => `${a.flag}: ${a.reason}`).join('; ')}`);
}

/** One log line's worth of fields describing a selection. */
export function describeSelection(selection: BackendSelection): Record<string, unknown> {
  return {
    backend: selection.flag,
    forced: selection.forced,
    passedOver: Object.fromEntries(selection.attempts.filter((a) => !a.available).map((a) => [a.flag, a.reason])),
    addedKernels: selection.addedKernels,
  };
}
