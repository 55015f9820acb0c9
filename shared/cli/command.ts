/**
 * What every `npm run …` command does the same way: strict flag parsing that answers a wrong flag
 * with the usage text (exit 2) and `--help` with it (exit 0), and an entry point that turns the
 * command's exit code, or an error it throws, into the process's exit.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type FlagOptions = NonNullable<ParseArgsConfig['options']>;
type WithHelp<T extends FlagOptions> = T & { help: { type: 'boolean' } };

/** The parsed flags of a command whose options are `T` (plus `--help`). */
export type CommandFlags<T extends FlagOptions> = ReturnType<typeof parseArgs<{ args: string[]; options: WithHelp<T>; strict: true }>>['values'];

export type ParsedCommandLine<T extends FlagOptions> = { values: CommandFlags<T>; exitCode?: undefined } | { values?: undefined; exitCode: number };

/** Parses `argv` strictly; on a bad flag or `--help` it has already written the answer and gives the exit code. */
export function parseCommandLine<T extends FlagOptions>(argv: string[], options: T, help: string): ParsedCommandLine<T> {
  const withHelp = { ...options, help: { type: 'boolean' } } as WithHelp<T>;
  let values: CommandFlags<T>;
  try {
    ({ values } = parseArgs({ args: argv, options: withHelp, strict: true }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${help}\n`);
    return { exitCode: 2 };
  }
  if ((values as { help?: boolean }).help) {
    process.stdout.write(`${help}\n`);
    return { exitCode: 0 };
  }
  return { values };
}

/**
 * Runs a command's `main` on this process's arguments and exits with its code; when it throws, the
 * message alone and `exitCodeFor(error)` (1 unless told otherwise, e.g. 2 for a bad job file).
 */
export function runCommand(main: (argv: string[]) => Promise<number>, exitCodeFor: (error: unknown) => number = () => 1): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(exitCodeFor(error));
    },
  );
}

/** True when the module at `moduleUrl` is the script node was started with (not imported by a test). */
export function isEntryPoint(moduleUrl: string): boolean {
  return moduleUrl === `file://${process.argv[1]}`;
}
