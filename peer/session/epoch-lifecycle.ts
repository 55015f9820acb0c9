/**
 * What every kind of membership epoch on a peer (a ring rank, a pipeline stage) does the same way:
 * it starts once, settles with how it ended and never rejects, and may wait for the checkpoint the
 * coordinator sends when the epoch starts from one.
 */
export abstract class EpochLifecycle<Start, Outcome, Restore> {
  private finished: Promise<Outcome> | undefined;
  private readonly restoreLatch: { resolve(message: Restore): void; promise: Promise<Restore> };

  constructor() {
    let resolve!: (message: Restore) => void;
    const promise = new Promise<Restore>((r) => (resolve = r));
    this.restoreLatch = { resolve, promise };
  }

  /** Starts the epoch; the promise settles with how it ended (never rejects). */
  start(start: Start): Promise<Outcome> {
    this.finished ??= this.run(start).then(
      (outcome) => outcome,
      (error: unknown) => this.failure(error),
    );
    return this.finished;
  }

  /** Resolves once the epoch is over (immediately if it never started). */
  async ended(): Promise<void> {
    await this.finished;
  }

  /** The coordinator's `restore` message, which precedes the checkpoint files it sends. */
  deliverRestore(message: Restore): void {
    this.restoreLatch.resolve(message);
  }

  /** The `restore` message, once it has come. */
  protected restoreMessage(): Promise<Restore> {
    return this.restoreLatch.promise;
  }

  protected abstract run(start: Start): Promise<Outcome>;

  /** How an epoch that threw ended. */
  protected abstract failure(error: unknown): Outcome;
}
