/**
 * A counter one loop advances and another waits on: the sender may forward a chunk only once the
 * receiver has reduced it. `fail` releases every waiter with the error, so neither loop can hang
 * after the other has died.
 */
export class ProgressGate {
  private count = 0;
  private failure: Error | undefined;
  private waiters: { target: number; resolve: () => void; reject: (error: Error) => void }[] = [];

  get value(): number {
    return this.count;
  }

  advance(): void {
    this.count++;
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.target <= this.count);
    this.waiters = this.waiters.filter((w) => w.target > this.count);
    for (const waiter of ready) waiter.resolve();
  }

  /** Resolves once the counter reaches `target`. */
  reach(target: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.count >= target) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ target, resolve, reject }));
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}
