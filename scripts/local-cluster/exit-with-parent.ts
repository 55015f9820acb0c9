/**
 * A child started by `npm start` must not outlive it: if the launcher dies without cleaning up
 * (kill -9), the child notices it has been re-parented and stops itself.
 */
export const EXIT_WITH_PARENT_ENV = 'RINGPIPE_EXIT_WITH_PARENT';

export function exitWithParent(onOrphaned: () => void, env: NodeJS.ProcessEnv = process.env): void {
  if (env[EXIT_WITH_PARENT_ENV] !== '1') return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      onOrphaned();
    }
  }, 1_000);
  timer.unref();
}
