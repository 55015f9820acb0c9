/**
 * The child side of a launch: reads the launcher's one JSON line on stdin (whom to dial), within
 * `timeoutMs`. `what` names it in errors ("ring", "stage"). Afterwards stdin no longer keeps the
 * process alive.
 */
export function readAssignment<T extends object>(timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => finish(new Error(`no ${what} assignment from the launcher within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline < 0) return;
      try {
        finish(undefined, JSON.parse(text.slice(0, newline)) as T);
      } catch (error) {
        finish(new Error(`unreadable ${what} assignment from the launcher: ${(error as Error).message}`));
      }
    };
    const onEnd = (): void => finish(new Error(`the launcher closed stdin before sending the ${what} assignment`));
    const finish = (error: Error | undefined, value?: T): void => {
      clearTimeout(timer);
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      // Let the process exit on its own later: stdin must not keep the event loop alive.
      process.stdin.pause();
      (process.stdin as { unref?: () => void }).unref?.();
      if (error) reject(error);
      else resolve(value ?? ({} as T));
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
  });
}
