import cliProgress from 'cli-progress';

/**
 * A progress bar on an interactive terminal (cli-progress, drawn on stderr); on a pipe or in CI
 * it falls back to a log line every `logEvery` updates so output stays readable.
 */
export interface Progress {
  update(done: number, fields: Record<string, string | number>): void;
  stop(): void;
}

export function createProgress(total: number, label: string, log: (fields: Record<string, unknown>) => void, logEvery = 50): Progress {
  if (!process.stderr.isTTY) {
    return {
      update(done, fields) {
        if (done % logEvery === 0 || done === total) log({ done, total, ...fields });
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} {bar} {percentage}% | {value}/{total} steps | loss {loss} | {speed} samples/s | eta {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { loss: '-', speed: '-' });
  return {
    update(done, fields) {
      bar.update(done, fields);
    },
    stop() {
      bar.stop();
    },
  };
}
