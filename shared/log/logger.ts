import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/**
 * The one way ringpipe creates loggers: pretty, coloured lines on an interactive terminal,
 * newline-delimited JSON everywhere else (pipes, files, CI, child processes).
 * `RINGPIPE_LOG_LEVEL` overrides the level; `RINGPIPE_LOG_FORMAT=json|pretty` overrides the format.
 */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = process.env.RINGPIPE_LOG_LEVEL ?? options.level ?? 'info';
  const format = process.env.RINGPIPE_LOG_FORMAT ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const base: LoggerOptions = { ...options, name, level };
  if (format === 'pretty') {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' },
      },
    });
  }
  return pino(base, pino.destination({ fd: 2, sync: true }));
}
