import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEnvFallbacks, ConfigError, COORDINATOR_ENV_FLAGS, envFlagsHelp, OTHER_ENV, PEER_ENV_FLAGS, readEnvValue, type EnvFlag } from '../shared/config/index.js';

const ROOT = path.join(import.meta.dirname, '..');

const table: EnvFlag[] = [
  { flag: 'port', env: 'RP_PORT', kind: 'port' },
  { flag: 'name', env: 'RP_NAME', kind: 'text' },
  { flag: 'count', env: 'RP_COUNT', kind: 'count' },
  { flag: 'seconds', env: 'RP_SECONDS', kind: 'positive' },
  { flag: 'stay', env: 'RP_STAY', kind: 'switch' },
];

describe('environment variables standing in for flags', () => {
  it('fills only the flags not given, and a flag on the command line wins', () => {
    const env = { RP_PORT: '7070', RP_NAME: ' lab ', RP_COUNT: '3', RP_SECONDS: '0.5', RP_STAY: 'yes' };
    expect(applyEnvFallbacks({}, table, env)).toEqual({ port: '7070', name: 'lab', count: '3', seconds: '0.5', stay: true });
    expect(applyEnvFallbacks({ port: '9000', stay: false }, table, env)).toMatchObject({ port: '9000', stay: false, name: 'lab' });
    // A bad variable is ignored when its flag was given: the flag is what counts.
    expect(applyEnvFallbacks({ port: '9000' }, table, { RP_PORT: 'nope' })).toEqual({ port: '9000' });
  });

  it('treats unset and blank variables alike (a manifest\'s `value: ""`)', () => {
    expect(applyEnvFallbacks({}, table, { RP_PORT: '', RP_NAME: '   ', RP_STAY: '' })).toEqual({});
  });

  it('does not touch the values it was given', () => {
    const values = { name: undefined as string | undefined };
    applyEnvFallbacks(values, table, { RP_NAME: 'x' });
    expect(values.name).toBeUndefined();
  });

  it.each([
    ['RP_PORT', 'port', 'abc', /^RP_PORT="abc": expected a port number 0–65535$/],
    ['RP_PORT', 'port', '70000', /expected a port number/],
    ['RP_PORT', 'port', '-1', /expected a port number/],
    ['RP_COUNT', 'count', '2.5', /^RP_COUNT="2.5": expected a whole number ≥ 0$/],
    ['RP_COUNT', 'count', 'many', /expected a whole number/],
    ['RP_SECONDS', 'positive', '0', /^RP_SECONDS="0": expected a number > 0$/],
    ['RP_SECONDS', 'positive', 'Infinity', /expected a number > 0/],
    ['RP_SECONDS', 'positive', '1e400', /expected a number > 0/],
    ['RP_STAY', 'switch', 'maybe', /^RP_STAY="maybe": expected 1\/0, true\/false, yes\/no or on\/off$/],
  ] as const)('names the variable when %s=%s is not a %s', (name, kind, raw, message) => {
    expect(() => readEnvValue(name, kind, { [name]: raw })).toThrowError(ConfigError);
    expect(() => readEnvValue(name, kind, { [name]: raw })).toThrowError(message);
  });

  it.each([
    ['1', true], ['true', true], ['ON', true], ['yes', true], ['0', false], ['false', false], ['Off', false], ['no', false],
  ] as const)('reads the switch %s as %s', (raw, expected) => {
    expect(readEnvValue('RP_STAY', 'switch', { RP_STAY: raw })).toBe(expected);
  });

  it('keeps every variable and flag unique within a command', () => {
    for (const commandTable of [COORDINATOR_ENV_FLAGS, PEER_ENV_FLAGS]) {
      const envs = [...commandTable.map((entry) => entry.env), ...OTHER_ENV.map((entry) => entry.env)];
      expect(new Set(envs).size).toBe(envs.length);
      expect(new Set(commandTable.map((entry) => entry.flag)).size).toBe(commandTable.length);
      for (const { env } of commandTable) expect(env).toMatch(/^RINGPIPE_[A-Z_]+$/);
    }
  });

  it('lists every variable in the help text', () => {
    const help = envFlagsHelp(table);
    for (const { flag, env } of table) expect(help).toMatch(new RegExp(`--${flag} +${env}\\n|--${flag} +${env}$`));
  });

  // The real commands: every flag of their table is one of their options, and the help says which
  // variable sets it. Reading the variables end to end is in health-processes.test.ts.
  it.each([
    ['coordinator', COORDINATOR_ENV_FLAGS],
    ['peer', PEER_ENV_FLAGS],
  ] as const)('npm run %s --help documents every flag of its table and its variable', (command, commandTable) => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', `${command}.ts`), '--help'], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    const [options, environment] = run.stdout.split('Environment (a flag on the command line wins):');
    for (const { flag, env } of commandTable) {
      expect(options, `--${flag} among the options`).toMatch(new RegExp(`(^\\s+|, )--${flag}\\b`, 'm'));
      expect(environment, `${env} in the environment list`).toMatch(new RegExp(`--${flag} +${env}$`, 'm'));
    }
    expect(options).toMatch(/--secret-file PATH/);
  });

  it('a bad variable stops the real command with its name before anything starts', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'coordinator.ts')], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, RINGPIPE_MDNS: '0', RINGPIPE_MAX_PEERS: 'lots' },
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^error: RINGPIPE_MAX_PEERS="lots": expected a whole number ≥ 0$/m);
  });
});
