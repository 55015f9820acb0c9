/**
 * The tensor engines ringpipe can run on, best first. `flag` is what `--backend` accepts,
 * `tfName` is the name TensorFlow.js registers the backend under once its package is loaded.
 */
export interface BackendCandidate {
  flag: BackendFlag;
  /** npm package that provides the backend; undefined for the cpu backend built into @tensorflow/tfjs. */
  packageName?: string;
  tfName: string;
  description: string;
}

export const BACKEND_FLAGS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendFlag = (typeof BACKEND_FLAGS)[number];

export const BACKEND_CANDIDATES: readonly BackendCandidate[] = [
  { flag: 'node-gpu', packageName: '@tensorflow/tfjs-node-gpu', tfName: 'tensorflow', description: 'libtensorflow with CUDA' },
  { flag: 'node', packageName: '@tensorflow/tfjs-node', tfName: 'tensorflow', description: 'libtensorflow on the CPU' },
  { flag: 'wasm', packageName: '@tensorflow/tfjs-backend-wasm', tfName: 'wasm', description: 'WebAssembly with SIMD, one thread' },
  { flag: 'cpu', tfName: 'cpu', description: 'pure JavaScript (slow)' },
];

export function isBackendFlag(value: string): value is BackendFlag {
  return (BACKEND_FLAGS as readonly string[]).includes(value);
}
