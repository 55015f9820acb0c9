import { isIPv4, isIPv6 } from 'node:net';
import { DiscoveryConfigError } from './errors.js';
import { readEnvValue } from '../config/env-value.js';

/** Where to reach the coordinator when it is given rather than discovered. */
export interface CoordinatorEndpoint {
  host: string;
  port: number;
}

export type CoordinatorSource = '--coordinator' | 'RINGPIPE_COORDINATOR';

/** Either an explicit address (flag or environment) or "find it with mDNS". */
export type CoordinatorAddressChoice =
  | { kind: 'explicit'; endpoint: CoordinatorEndpoint; source: CoordinatorSource }
  | { kind: 'mdns' };

export const COORDINATOR_ENV = 'RINGPIPE_COORDINATOR';
export const MDNS_ENV = 'RINGPIPE_MDNS';

const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const EXAMPLE = 'e.g. 192.168.1.20:7070, coordinator.local:7070 or [fe80::1%eth0]:7070';

/** Parses `host:port` (IPv4, host name, or `[IPv6]:port`); `source` names the flag or variable. */
export function parseHostPort(value: string, source: string): CoordinatorEndpoint {
  const text = value.trim();
  const bad = (why: string) => new DiscoveryConfigError(`${source} ${JSON.stringify(value)}: ${why} (expected host:port, ${EXAMPLE})`);
  if (text === '') throw bad('empty value');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw bad('give host:port without a scheme');

  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw bad('missing "]" after the IPv6 address');
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (!rest.startsWith(':')) throw bad('missing ":port" after the IPv6 address');
    portText = rest.slice(1);
    if (!isIPv6(host.replace(/%[^%]+$/, ''))) throw bad(`"${host}" is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw bad('missing ":port"');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) throw bad('write an IPv6 address in brackets');
    if (host === '') throw bad('missing host');
    if (/^[\d.]+$/.test(host) ? !isIPv4(host) : !HOSTNAME.test(host)) throw bad(`"${host}" is not a valid IPv4 address or host name`);
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad(portText === '' ? 'missing port number' : `port "${portText}" is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65_535) throw bad(`port ${port} is outside 1–65535`);
  return { host, port };
}

export interface DiscoveryInputs {
  /** `--coordinator host:port`. */
  coordinatorFlag?: string | undefined;
  /** `--no-mdns` given. */
  noMdnsFlag?: boolean | undefined;
  env?: NodeJS.ProcessEnv;
}

/** Whether this process may use mDNS at all (advertise or browse). `--no-mdns` wins over the env. */
export function isMdnsEnabled({ noMdnsFlag, env = process.env }: DiscoveryInputs): boolean {
  if (noMdnsFlag) return false;
  return (readEnvValue(MDNS_ENV, 'switch', env) as boolean | undefined) ?? true;
}

/**
 * How a peer finds its coordinator: an explicit address (`--coordinator`, else
 * `RINGPIPE_COORDINATOR`) always wins; otherwise mDNS, unless it is disabled, which is an error
 * because nothing would ever be found.
 */
export function resolveCoordinatorAddress(inputs: DiscoveryInputs): CoordinatorAddressChoice {
  const env = inputs.env ?? process.env;
  const mdns = isMdnsEnabled({ ...inputs, env });
  if (inputs.coordinatorFlag !== undefined) {
    return { kind: 'explicit', endpoint: parseHostPort(inputs.coordinatorFlag, '--coordinator'), source: '--coordinator' };
  }
  const fromEnv = env[COORDINATOR_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { kind: 'explicit', endpoint: parseHostPort(fromEnv, COORDINATOR_ENV), source: COORDINATOR_ENV };
  }
  if (!mdns) {
    const why = inputs.noMdnsFlag ? '--no-mdns' : `${MDNS_ENV}=${env[MDNS_ENV]}`;
    throw new DiscoveryConfigError(`mDNS discovery is disabled (${why}) and no coordinator address was given: pass --coordinator host:port or set ${COORDINATOR_ENV}=host:port`);
  }
  return { kind: 'mdns' };
}
