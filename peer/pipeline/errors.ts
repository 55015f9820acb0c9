/**
 * What went wrong in a pipeline, as a kind a caller can act on:
 * - `usage`: bad options (balance, micro-batch count, stage index…), fix the call;
 * - `not-sequential`: the model is not a chain of layers, so it has no single tensor to cut at;
 * - `desync`: a neighbour sent something this stage did not expect (another step, micro-batch, epoch);
 * - `link`: a neighbour's link failed or closed;
 * - `timeout`: a neighbour sent nothing within the deadline.
 */
export type PipelineErrorKind = 'usage' | 'not-sequential' | 'desync' | 'link' | 'timeout';

export class PipelineError extends Error {
  constructor(
    readonly kind: PipelineErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PipelineError';
  }
}
