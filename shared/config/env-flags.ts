import { readEnvValue, type EnvValueKind } from './env-value.js';

/** One command-line flag that an environment variable can also set. */
export interface EnvFlag {
  /** The `node:util` parseArgs option name (the flag without its dashes). */
  flag: string;
  env: string;
  kind: EnvValueKind;
}

/**
 * Fills every flag that was not given on the command line from its environment variable, so a
 * container can be configured entirely through `env:` (Kubernetes) or `-e` (docker run). A flag on
 * the command line always wins. Values from the environment are checked by kind first, and a bad
 * one is reported by the variable's name; after that they pass through the command's own
 * validation exactly like typed flags.
 */
export function applyEnvFallbacks<Values extends object>(values: Values, table: readonly EnvFlag[], env: NodeJS.ProcessEnv = process.env): Values {
  const filled = { ...values } as Record<string, unknown>;
  for (const { flag, env: name, kind } of table) {
    if (filled[flag] !== undefined) continue;
    const value = readEnvValue(name, kind, env);
    if (value !== undefined) filled[flag] = value;
  }
  return filled as Values;
}

/** Help lines: which variable sets which flag. */
export function envFlagsHelp(table: readonly EnvFlag[]): string {
  const width = Math.max(...table.map(({ flag }) => flag.length)) + 2;
  const lines = table.map(({ flag, env }) => `  --${flag.padEnd(width)} ${env}`);
  return `Environment (a flag on the command line wins):\n${lines.join('\n')}`;
}
