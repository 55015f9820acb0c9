import { z } from 'zod';

/**
 * How many peers a cluster job or a distillation round trains with, and how long it waits for
 * them: the `peers` section of both (one schema, so the two keep the same rules and defaults).
 */
export const peersSectionSchema = z
  .object({
    /** Fewest peers to train with; below it the job or round waits (for `waitSeconds`) instead of training. */
    min: z.number().int().min(1).max(1024).default(1),
    /** Most peers to train with; training starts at once when this many have joined. */
    max: z.number().int().min(1).max(1024).default(16),
    /** With `min` (but not `max`) peers joined, wait this long for more before starting. */
    graceSeconds: z.number().min(0).max(3600).default(10),
    /** Give up when `min` peers have not joined this long after the coordinator (or the round) started. */
    joinTimeoutSeconds: z.number().positive().max(86_400).default(300),
    /** During training, give up when fewer than `min` peers stay alive this long. */
    waitSeconds: z.number().positive().max(86_400).default(120),
  })
  .strict();
