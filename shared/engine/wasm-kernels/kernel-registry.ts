// Bookkeeping for kernels we put in place of stock wasm kernels: which stock kernel each one
// displaced (to put it back, and so our kernels can still delegate to it), and a way to run a
// stock kernel from inside ours.
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';

/** Our kernel per replaced name, and the stock kernel it displaced (undefined: the slot was empty). */
const installed = new Map<string, { ours: KernelConfig; stock: KernelConfig | undefined }>();

function isRegistered(config: KernelConfig): boolean {
  return tf.getKernel(config.kernelName, 'wasm') === config;
}

/** Puts `ours` in place of the registered wasm kernel of that name. Returns false if already there. */
export function installReplacement(ours: KernelConfig): boolean {
  if (isRegistered(ours)) return false;
  const current = tf.getKernel(ours.kernelName, 'wasm');
  if (current !== undefined) tf.unregisterKernel(ours.kernelName, 'wasm');
  installed.set(ours.kernelName, { ours, stock: current });
  tf.registerKernel(ours);
  return true;
}

/** Puts the displaced stock kernel back. Returns false if our kernel was not installed. */
export function removeReplacement(kernelName: string): boolean {
  const entry = installed.get(kernelName);
  if (entry === undefined) return false;
  installed.delete(kernelName);
  if (!isRegistered(entry.ours)) return false;
  tf.unregisterKernel(kernelName, 'wasm');
  // The very config object tfjs set up at backend init: its cwrapped wasm function survives.
  if (entry.stock !== undefined) tf.registerKernel(entry.stock);
  return true;
}

/** Whether our replacement for that kernel is the one registered now. */
export function isReplacementInstalled(kernelName: string): boolean {
  const entry = installed.get(kernelName);
  return entry !== undefined && isRegistered(entry.ours);
}

/** The stock wasm kernel of that name, whether or not one of ours currently stands in for it. */
export function stockKernel(kernelName: string): KernelConfig | undefined {
  const entry = installed.get(kernelName);
  return entry !== undefined ? entry.stock : tf.getKernel(kernelName, 'wasm');
}

/** Backends on which a stock kernel's setupFunc (its cwrap of the wasm export) has run. */
const setUpOn = new WeakMap<KernelConfig, WeakSet<object>>();

/**
 * Runs the stock wasm kernel `kernelName`. Its setupFunc runs once per backend instance first:
 * tfjs only sets up kernels registered when the backend initialises, and a displaced kernel
 * may have been off the registry then (or bound to an earlier backend instance).
 */
export function runStockKernel(kernelName: string, backend: object, inputs: NamedTensorInfoMap, attrs: NamedAttrMap): TensorInfo {
  const stock = stockKernel(kernelName);
  if (stock === undefined) throw new Error(`wasm-kernels: the wasm backend has no stock '${kernelName}' kernel`);
  let backends = setUpOn.get(stock);
  if (backends === undefined) setUpOn.set(stock, (backends = new WeakSet()));
  if (!backends.has(backend)) {
    stock.setupFunc?.(backend as Parameters<NonNullable<KernelConfig['setupFunc']>>[0]);
    backends.add(backend);
  }
  const result = stock.kernelFunc({ inputs, attrs, backend: backend as Parameters<KernelConfig['kernelFunc']>[0]['backend'] });
  if (Array.isArray(result)) throw new Error(`wasm-kernels: stock ${kernelName} returned several outputs`);
  return result as TensorInfo;
}
