/** Why a collective failed. `kind` tells a caller whether retrying in a new ring epoch makes sense. */
export type RingErrorKind = 'desync' | 'timeout' | 'link' | 'broken' | 'usage';

export class RingError extends Error {
  constructor(
    readonly kind: RingErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RingError';
  }
}
