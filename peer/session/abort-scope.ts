/**
 * Ends waits early when an epoch is aborted (a member died, the coordinator reassigned us). Every
 * wait of an epoch goes through `race`, so an abort never leaves the peer stuck in a wait that
 * only its own timeout would end.
 */
export class EpochAborted extends Error {
  constructor(readonly reason: string) {
    super(`epoch aborted: ${reason}`);
    this.name = 'EpochAborted';
  }
}

export class AbortScope {
  private reasonValue: string | undefined;
  private readonly listeners = new Set<(error: EpochAborted) => void>();

  get aborted(): boolean {
    return this.reasonValue !== undefined;
  }

  get reason(): string | undefined {
    return this.reasonValue;
  }

  abort(reason: string): void {
    if (this.reasonValue !== undefined) return;
    this.reasonValue = reason;
    const error = new EpochAborted(reason);
    for (const listener of this.listeners) listener(error);
    this.listeners.clear();
  }

  throwIfAborted(): void {
    if (this.reasonValue !== undefined) throw new EpochAborted(this.reasonValue);
  }

  /**
   * `promise`, or an EpochAborted rejection as soon as the scope aborts. `onLate` receives the value
   * if it still arrives after the abort (to close a ring that connected too late).
   */
  race<T>(promise: Promise<T>, onLate?: (value: T) => void): Promise<T> {
    if (this.reasonValue !== undefined) {
      promise.then((value) => onLate?.(value), () => {});
      return Promise.reject(new EpochAborted(this.reasonValue));
    }
    return new Promise<T>((resolve, reject) => {
      let lost = false;
      const listener = (error: EpochAborted): void => {
        lost = true;
        reject(error);
      };
      this.listeners.add(listener);
      promise.then(
        (value) => {
          this.listeners.delete(listener);
          if (lost) onLate?.(value);
          else resolve(value);
        },
        (error: unknown) => {
          this.listeners.delete(listener);
          if (!lost) reject(error);
        },
      );
    });
  }
}

/** A promise with a deadline, for waits that have no timeout of their own. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, describe: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(describe())), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
