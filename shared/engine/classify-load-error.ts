/**
 * Turns the error thrown while loading a backend package into a one-line reason a user can act on.
 * The three cases seen in practice: the package is absent (npm drops an optional dependency whose
 * install script failed), present without its native addon (install scripts skipped or failed
 * half-way), or present but unable to load CUDA.
 */
export type LoadFailureKind = 'not-installed' | 'native-addon-missing' | 'no-cuda' | 'load-error';

export interface LoadFailure {
  kind: LoadFailureKind;
  reason: string;
}

export function classifyLoadError(packageName: string, err: unknown): LoadFailure {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string } | undefined)?.code;
  const firstLine = message.split('\n')[0] ?? message;

  if (/libcud|cuda|cudnn|libnvinfer/i.test(message)) {
    return {
      kind: 'no-cuda',
      reason: `${packageName} is installed but could not load the CUDA libraries (${firstLine}); install CUDA and cuDNN matching libtensorflow, or use --backend node`,
    };
  }
  if (/native addon|tfjs_binding\.node|node-pre-gyp|libtensorflow/i.test(message)) {
    return {
      kind: 'native-addon-missing',
      reason: `${packageName} is installed but its native addon is missing (its install script did not download libtensorflow); run \`npm rebuild ${packageName}\` on a machine that can reach the TensorFlow binaries`,
    };
  }
  if ((code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') && message.includes(packageName)) {
    return { kind: 'not-installed', reason: `${packageName} is not installed (optional dependency; npm removes it when its install fails)` };
  }
  return { kind: 'load-error', reason: `${packageName} failed to load: ${firstLine}` };
}
