/**
 * Data-parallel training over a ring: see trainDataParallel and docs/readme-parts/allreduce.md.
 */
export { trainDataParallel, type DataParallelOptions, type DataParallelResult, type DataParallelStepReport } from './dp-trainer.js';
export { ReplicaDivergenceError, ReplicaCheck, broadcastWeights, hashWeights } from './weight-sync.js';
export { GradientFusion } from './gradient-fusion.js';
export { fusedLayout, type FusedLayout, type FusedEntry } from './fused-layout.js';
export { createFlatGradientExchange, createGradientExchange, type ExchangeReport, type GradientExchangeArgs } from './gradient-exchange.js';
