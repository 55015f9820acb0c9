import { OPTIMIZERS } from '../../shared/job/schema.js';

export type OptimizerName = (typeof OPTIMIZERS)[number];

/**
 * Float32 values of optimizer state kept per weight, as tfjs's optimizers allocate them: Adam keeps
 * the first and second moments, momentum its velocity, RMSProp (not centered) its mean square and
 * its moment (allocated even at momentum 0), plain SGD nothing.
 */
export const OPTIMIZER_SLOTS: Record<OptimizerName, number> = { adam: 2, sgd: 0, momentum: 1, rmsprop: 2 };

export function isOptimizerName(name: string): name is OptimizerName {
  return (OPTIMIZERS as readonly string[]).includes(name);
}
