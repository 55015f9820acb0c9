import type { FusedLayout } from '../data-parallel/fused-layout.js';
import { Fp16Reducer } from './fp16-reducer.js';
import type { GradientReducer } from './gradient-reducer.js';
import { PlainReducer } from './plain-reducer.js';
import { PowerSgdReducer } from './powersgd-reducer.js';

export const COMPRESSIONS = ['none', 'fp16', 'powersgd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export function isCompression(value: string): value is Compression {
  return (COMPRESSIONS as readonly string[]).includes(value);
}

/** The reducer behind `--compress`. */
export function createReducer(compression: Compression, layout: FusedLayout, options: { seed: number; powerSgdRank?: number }): GradientReducer {
  switch (compression) {
    case 'none':
      return new PlainReducer();
    case 'fp16':
      return new Fp16Reducer();
    case 'powersgd':
      return new PowerSgdReducer(layout, { seed: options.seed, ...(options.powerSgdRank ? { rank: options.powerSgdRank } : {}) });
  }
}
