/**
 * After a job finished, waits for SIGINT/SIGTERM instead of exiting. Kubernetes restarts every
 * container of a Deployment or StatefulSet that exits, even with code 0: without this, a finished
 * coordinator would come back, resume from its final checkpoint and run the job's end again, and
 * peers would rejoin it, over and over. Resolves with the signal's name.
 */
export function holdUntilStopped(signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    // Signal listeners do not keep Node running; this timer does, until a signal comes.
    const keepAlive = setInterval(() => {}, 60_000);
    const handlers = signals.map((signal) => {
      const handler = (): void => {
        clearInterval(keepAlive);
        signals.forEach((other, i) => process.off(other, handlers[i]!));
        resolve(signal);
      };
      process.on(signal, handler);
      return handler;
    });
  });
}
