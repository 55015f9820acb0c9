// Fills the training gaps of @tensorflow/tfjs-backend-wasm 4.22 (no Conv2DBackpropFilter, no
// depthwise gradients) so CNNs train on wasm. Call right after selecting the 'wasm' backend.
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputCol2imConfig } from './conv2d-backprop-input.js';
import { depthwiseConv2dBackpropFilterConfig } from './depthwise-conv2d-backprop-filter.js';
import { depthwiseConv2dBackpropInputConfig } from './depthwise-conv2d-backprop-input.js';

export interface WasmTrainingKernelOptions {
  /**
   * Use the col2im + XNNPACK-matmul Conv2DBackpropInput instead of the stock wasm kernel
   * (default true: measured several times faster, see docs/readme-parts/wasm-kernels.md).
   * `false` keeps, or puts back, the stock kernel.
   */
  fastBackpropInput?: boolean;
}

/** Kernels tfjs-backend-wasm lacks; each is registered only if the slot is empty. */
const MISSING_KERNELS: readonly KernelConfig[] = [
  conv2dBackpropFilterConfig,
  depthwiseConv2dBackpropFilterConfig,
  depthwiseConv2dBackpropInputConfig,
];

/** Slots we filled, so unregistering never removes a kernel someone else registered. */
const filledByUs = new Set<KernelConfig>();
/** Whether our Conv2DBackpropInput is installed, and the stock kernel it displaced. */
let fastBackpropInputInstalled = false;
let displacedBackpropInput: KernelConfig | undefined;

function isRegistered(config: KernelConfig): boolean {
  return tf.getKernel(config.kernelName, 'wasm') === config;
}

function useFastBackpropInput(): boolean {
  if (isRegistered(conv2dBackpropInputCol2imConfig)) return false;
  const stock = tf.getKernel(conv2dBackpropInputCol2imConfig.kernelName, 'wasm');
  if (stock !== undefined) tf.unregisterKernel(stock.kernelName, 'wasm');
  displacedBackpropInput = stock;
  tf.registerKernel(conv2dBackpropInputCol2imConfig);
  fastBackpropInputInstalled = true;
  return true;
}

function putBackStockBackpropInput(): boolean {
  if (!fastBackpropInputInstalled) return false;
  fastBackpropInputInstalled = false;
  if (!isRegistered(conv2dBackpropInputCol2imConfig)) return false;
  tf.unregisterKernel(conv2dBackpropInputCol2imConfig.kernelName, 'wasm');
  // The very config object tfjs set up at backend init: its cwrapped wasm function survives.
  if (displacedBackpropInput !== undefined) tf.registerKernel(displacedBackpropInput);
  displacedBackpropInput = undefined;
  return true;
}

/**
 * Registers the missing wasm training kernels (and, by default, the fast Conv2DBackpropInput).
 * Idempotent. Returns the kernel names registered by this call.
 */
export function registerWasmTrainingKernels(options: WasmTrainingKernelOptions = {}): string[] {
  const added: string[] = [];
  for (const config of MISSING_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm') !== undefined) continue;
    tf.registerKernel(config);
    filledByUs.add(config);
    added.push(config.kernelName);
  }
  if (options.fastBackpropInput ?? true) {
    if (useFastBackpropInput()) added.push(conv2dBackpropInputCol2imConfig.kernelName);
  } else {
    putBackStockBackpropInput();
  }
  return added;
}

/** Removes every kernel we registered and restores the stock Conv2DBackpropInput. Returns the names. */
export function unregisterWasmTrainingKernels(): string[] {
  const removed: string[] = [];
  for (const config of filledByUs) {
    if (!isRegistered(config)) continue;
    tf.unregisterKernel(config.kernelName, 'wasm');
    removed.push(config.kernelName);
  }
  filledByUs.clear();
  if (putBackStockBackpropInput()) removed.push(conv2dBackpropInputCol2imConfig.kernelName);
  return removed;
}
