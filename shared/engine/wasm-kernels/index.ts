// Fills the training gaps of @tensorflow/tfjs-backend-wasm 4.22 (no Conv2DBackpropFilter, no
// depthwise gradients) so CNNs train on wasm, and replaces stock kernels that are slow on the
// training path. Call right after selecting the 'wasm' backend.
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { batchMatMulConfig } from './batch-mat-mul.js';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputCol2imConfig } from './conv2d-backprop-input.js';
import { depthwiseConv2dBackpropFilterConfig } from './depthwise-conv2d-backprop-filter.js';
import { depthwiseConv2dBackpropInputConfig } from './depthwise-conv2d-backprop-input.js';
import { fusedMatMulConfig } from './fused-mat-mul.js';
import { installReplacement, removeReplacement } from './kernel-registry.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { sumConfig } from './sum-leading-axes.js';
import { castConfig, identityConfig } from './zero-copy-identity.js';

/**
 * Which replacement kernels to use. Each defaults to on, unless the environment variable
 * RINGPIPE_FAST_KERNELS is 0 / false / no / off, which makes every default off. `false` keeps, or
 * puts back, the stock kernels. Measured gains: docs/readme-parts/engine-speed.md.
 */
export interface WasmTrainingKernelOptions {
  /** Conv2DBackpropInput as col2im + XNNPACK matmul instead of the stock direct loop. */
  fastBackpropInput?: boolean;
  /**
   * BatchMatMul and _FusedMatMul that keep transposed and batched products on XNNPACK (the
   * stock kernels fall back to a naive loop, and the stock _FusedMatMul is wrong there).
   */
  fastMatMul?: boolean;
  /** MaxPoolGrad as one argmax pass in JS instead of the stock kernel. */
  fastMaxPoolGrad?: boolean;
  /** Sum over leading axes (bias gradients) without the stock kernel's full transpose. */
  fastSum?: boolean;
  /** Identity (and Cast to the same dtype) sharing the bytes, as on cpu, instead of copying them. */
  zeroCopyIdentity?: boolean;
}

export const FAST_KERNELS_ENV = 'RINGPIPE_FAST_KERNELS';

/**
 * Whether the replacements are on by default: RINGPIPE_FAST_KERNELS unset or 1/true/yes/on →
 * true, 0/false/no/off → false (the convention of the other RINGPIPE_ switches); anything else
 * is an error rather than a silent guess.
 */
export function fastKernelsByDefault(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env[FAST_KERNELS_ENV];
  const value = raw?.trim().toLowerCase();
  if (value === undefined || value === '' || ['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new Error(`${FAST_KERNELS_ENV}=${JSON.stringify(raw)}: expected 1/0, true/false, yes/no or on/off`);
}

/** Kernels tfjs-backend-wasm lacks; each is registered only if the slot is empty. */
const MISSING_KERNELS: readonly KernelConfig[] = [
  conv2dBackpropFilterConfig,
  depthwiseConv2dBackpropFilterConfig,
  depthwiseConv2dBackpropInputConfig,
];

/** Replacements of stock kernels, by the option that switches them. */
const REPLACEMENTS: Readonly<Record<keyof WasmTrainingKernelOptions, readonly KernelConfig[]>> = {
  fastBackpropInput: [conv2dBackpropInputCol2imConfig],
  fastMatMul: [batchMatMulConfig, fusedMatMulConfig],
  fastMaxPoolGrad: [maxPoolGradConfig],
  fastSum: [sumConfig],
  zeroCopyIdentity: [identityConfig, castConfig],
};

/** Every replacement option set to `on`: `registerWasmTrainingKernels(allReplacements(false))` is the stock wasm backend plus only the missing kernels. */
export function allReplacements(on: boolean): Required<WasmTrainingKernelOptions> {
  return Object.fromEntries(Object.keys(REPLACEMENTS).map((option) => [option, on])) as unknown as Required<WasmTrainingKernelOptions>;
}

/** Slots we filled, so unregistering never removes a kernel someone else registered. */
const filledByUs = new Set<KernelConfig>();

/**
 * Registers the missing wasm training kernels and the chosen replacements (all by default).
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
  const byDefault = fastKernelsByDefault();
  for (const [option, configs] of Object.entries(REPLACEMENTS) as [keyof WasmTrainingKernelOptions, readonly KernelConfig[]][]) {
    const wanted = options[option] ?? byDefault;
    for (const config of configs) {
      if (wanted && installReplacement(config)) added.push(config.kernelName);
      if (!wanted) removeReplacement(config.kernelName);
    }
  }
  return added;
}

/** Removes every kernel we registered and puts the stock kernels back. Returns the names. */
export function unregisterWasmTrainingKernels(): string[] {
  const removed: string[] = [];
  for (const config of filledByUs) {
    if (tf.getKernel(config.kernelName, 'wasm') !== config) continue;
    tf.unregisterKernel(config.kernelName, 'wasm');
    removed.push(config.kernelName);
  }
  filledByUs.clear();
  for (const configs of Object.values(REPLACEMENTS)) {
    for (const config of configs) if (removeReplacement(config.kernelName)) removed.push(config.kernelName);
  }
  return removed;
}
