import { ConfigError } from './config-error.js';

/**
 * How an environment variable's text is checked before it stands in for a flag. Checked here, so a
 * bad value is reported under the variable's name rather than the flag's.
 */
export type EnvValueKind = 'text' | 'port' | 'count' | 'positive' | 'switch';

const SWITCH_ON = ['1', 'true', 'yes', 'on'];
const SWITCH_OFF = ['0', 'false', 'no', 'off'];

/**
 * The value of `name`, checked against `kind`: a string for every kind but `switch` (a boolean),
 * undefined when the variable is unset or blank (blank counts as unset, as in a manifest's `value: ""`).
 */
export function readEnvValue(name: string, kind: EnvValueKind, env: NodeJS.ProcessEnv): string | boolean | undefined {
  const raw = env[name];
  const text = raw?.trim();
  if (text === undefined || text === '') return undefined;
  const bad = (expected: string) => new ConfigError(`${name}=${JSON.stringify(raw)}: expected ${expected}`);
  switch (kind) {
    case 'text':
      return text;
    case 'port':
      if (!/^\d{1,5}$/.test(text) || Number(text) > 65_535) throw bad('a port number 0–65535');
      return text;
    case 'count':
      if (!/^\d{1,15}$/.test(text)) throw bad('a whole number ≥ 0');
      return text;
    case 'positive':
      if (!(Number(text) > 0) || !Number.isFinite(Number(text))) throw bad('a number > 0');
      return text;
    case 'switch': {
      const value = text.toLowerCase();
      if (SWITCH_ON.includes(value)) return true;
      if (SWITCH_OFF.includes(value)) return false;
      throw bad('1/0, true/false, yes/no or on/off');
    }
  }
}
