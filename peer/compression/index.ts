/** Gradient compression for the ring: `--compress none | fp16 | powersgd`, all with error feedback. */
export { createReducer, COMPRESSIONS, isCompression, type Compression } from './create-reducer.js';
export type { GradientReducer, ReduceStats } from './gradient-reducer.js';
export { Fp16Codec } from './fp16-codec.js';
export { PowerSgdReducer, type PowerSgdOptions } from './powersgd-reducer.js';
