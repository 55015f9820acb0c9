import type os from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  DiscoveryConfigError,
  discoverySettingsFromFlags,
  isMdnsEnabled,
  mdnsSocketOptions,
  parseHostPort,
  resolveCoordinatorAddress,
  resolveInterface,
} from '../shared/discovery/index.js';
import { uniqueNames } from '../shared/discovery/instance-name.js';
import { addressesToPublish } from '../shared/discovery/published-addresses.js';
import { decodeTxt, encodeTxt, type NodeDescription } from '../shared/discovery/txt-record.js';

describe('parseHostPort', () => {
  it.each([
    ['192.168.1.20:7070', { host: '192.168.1.20', port: 7070 }],
    ['coordinator.local:1', { host: 'coordinator.local', port: 1 }],
    ['  node-7:65535 ', { host: 'node-7', port: 65535 }],
    ['[::1]:7070', { host: '::1', port: 7070 }],
    ['[fe80::1%eth0]:7070', { host: 'fe80::1%eth0', port: 7070 }],
  ])('accepts %s', (text, expected) => {
    expect(parseHostPort(text, '--coordinator')).toEqual(expected);
  });

  it.each([
    ['', /empty value/],
    ['192.168.1.20', /missing ":port"/],
    ['192.168.1.20:', /missing port number/],
    [':7070', /missing host/],
    ['host:http', /port "http" is not a number/],
    ['host:0', /outside 1–65535/],
    ['host:70000', /outside 1–65535/],
    ['300.1.1.1:7070', /not a valid IPv4 address/],
    ['bad_name!:7070', /not a valid IPv4 address or host name/],
    ['::1:7070', /IPv6 address in brackets/],
    ['[::1:7070', /missing "\]"/],
    ['[::1]7070', /missing ":port"/],
    ['[zz::1]:7070', /not an IPv6 address/],
    ['ws://host:7070', /without a scheme/],
  ])('rejects %j with a clear message', (text, message) => {
    expect(() => parseHostPort(text, 'RINGPIPE_COORDINATOR')).toThrowError(message);
    expect(() => parseHostPort(text, 'RINGPIPE_COORDINATOR')).toThrowError(/RINGPIPE_COORDINATOR .*expected host:port/);
  });
});

describe('resolveCoordinatorAddress', () => {
  it('uses mDNS when nothing is given', () => {
    expect(resolveCoordinatorAddress({ env: {} })).toEqual({ kind: 'mdns' });
  });

  it('prefers the flag over the environment', () => {
    expect(resolveCoordinatorAddress({ coordinatorFlag: '10.0.0.1:1', env: { RINGPIPE_COORDINATOR: '10.0.0.2:2' } })).toEqual({
      kind: 'explicit',
      endpoint: { host: '10.0.0.1', port: 1 },
      source: '--coordinator',
    });
  });

  it('reads RINGPIPE_COORDINATOR, ignoring an empty value', () => {
    expect(resolveCoordinatorAddress({ env: { RINGPIPE_COORDINATOR: 'c.local:9' } })).toMatchObject({ kind: 'explicit', source: 'RINGPIPE_COORDINATOR' });
    expect(resolveCoordinatorAddress({ env: { RINGPIPE_COORDINATOR: ' ' } })).toEqual({ kind: 'mdns' });
  });

  it('explains that disabling mDNS needs an address', () => {
    expect(() => resolveCoordinatorAddress({ noMdnsFlag: true, env: {} })).toThrowError(/disabled \(--no-mdns\).*--coordinator host:port/);
    expect(() => resolveCoordinatorAddress({ env: { RINGPIPE_MDNS: '0' } })).toThrowError(/disabled \(RINGPIPE_MDNS=0\)/);
    expect(resolveCoordinatorAddress({ noMdnsFlag: true, env: { RINGPIPE_COORDINATOR: 'h:1' } })).toMatchObject({ kind: 'explicit' });
  });

  it('reports a malformed environment value by name', () => {
    expect(() => resolveCoordinatorAddress({ env: { RINGPIPE_COORDINATOR: 'nope' } })).toThrowError(DiscoveryConfigError);
    expect(() => resolveCoordinatorAddress({ env: { RINGPIPE_COORDINATOR: 'nope' } })).toThrowError(/^RINGPIPE_COORDINATOR "nope"/);
  });
});

describe('isMdnsEnabled / discoverySettingsFromFlags', () => {
  it.each([
    [{}, true],
    [{ RINGPIPE_MDNS: '' }, true],
    [{ RINGPIPE_MDNS: '1' }, true],
    [{ RINGPIPE_MDNS: 'ON' }, true],
    [{ RINGPIPE_MDNS: '0' }, false],
    [{ RINGPIPE_MDNS: 'false' }, false],
    [{ RINGPIPE_MDNS: 'no' }, false],
  ])('env %j → %s', (env, enabled) => {
    expect(isMdnsEnabled({ env })).toBe(enabled);
  });

  it('lets --no-mdns win and rejects unknown switch values', () => {
    expect(isMdnsEnabled({ noMdnsFlag: true, env: { RINGPIPE_MDNS: '1' } })).toBe(false);
    expect(() => isMdnsEnabled({ env: { RINGPIPE_MDNS: 'maybe' } })).toThrowError(/RINGPIPE_MDNS="maybe": expected 1\/0/);
  });

  it('maps parsed flags to settings, validating --coordinator only when asked', () => {
    const settings = discoverySettingsFromFlags({ interface: 'lo', coordinator: 'broken', 'no-mdns': true }, {});
    expect(settings.interface).toBe('lo');
    expect(settings.mdns).toBe(false);
    expect(() => settings.coordinatorAddress()).toThrowError(/--coordinator "broken": missing ":port"/);
  });
});

const table: NodeJS.Dict<os.NetworkInterfaceInfo[]> = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
  eth0: [
    { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    { address: '198.18.0.7', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '198.18.0.7/24' },
  ],
  wg0: [{ address: 'fd00::2', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: 'fd00::2/64', scopeid: 0 }],
};

describe('resolveInterface', () => {
  it('maps a name to its IPv4 address and an address to its interface', () => {
    expect(resolveInterface('eth0', table)).toEqual({ name: 'eth0', address: '198.18.0.7' });
    expect(resolveInterface('127.0.0.1', table)).toEqual({ name: 'lo', address: '127.0.0.1' });
  });

  it('names the available interfaces when the choice is wrong', () => {
    expect(() => resolveInterface('eth9', table)).toThrowError(/no such interface.*lo \(127\.0\.0\.1\), eth0 \(198\.18\.0\.7\)/);
    expect(() => resolveInterface('10.1.2.3', table)).toThrowError(/no local interface has this address/);
    expect(() => resolveInterface('wg0', table)).toThrowError(/has no IPv4 address/);
    expect(() => resolveInterface(' ', table)).toThrowError(/needs an IPv4 address or an interface name/);
  });

  it('binds the wildcard address whenever an interface is chosen (else nothing is heard)', () => {
    expect(mdnsSocketOptions({ name: 'lo', address: '127.0.0.1' })).toEqual({ interface: '127.0.0.1', bind: '0.0.0.0' });
    expect(mdnsSocketOptions(undefined)).toEqual({});
  });
});

describe('addressesToPublish', () => {
  it('publishes the chosen interface, else external IPv4s, else loopback', () => {
    expect(addressesToPublish({ name: 'lo', address: '127.0.0.1' }, table)).toEqual(['127.0.0.1']);
    expect(addressesToPublish(undefined, table)).toEqual(['198.18.0.7']);
    expect(addressesToPublish(undefined, { lo: table.lo })).toEqual(['127.0.0.1']);
  });
});

describe('TXT record', () => {
  const node: NodeDescription = { clusterName: 'lab-1', role: 'peer', nodeId: 'gpu-box:3', protocolVersion: 1, backend: 'wasm', freeMemoryBytes: 8_589_934_592 };

  it('round-trips every field as strings on the wire', () => {
    const txt = encodeTxt(node);
    expect(Object.values(txt).every((v) => typeof v === 'string')).toBe(true);
    expect(decodeTxt(txt)).toEqual({ ok: true, node });
  });

  it('names the bad field in a malformed record', () => {
    const result = decodeTxt({ ...encodeTxt(node), role: 'boss', freemem: '-1' });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).toMatch(/role: .*freemem: free memory must be a non-negative decimal integer/);
  });
});

describe('uniqueNames', () => {
  it('gives every advertisement its own instance and host name, each a valid DNS label', () => {
    const a = uniqueNames('c', 'peer', 'n.1');
    const b = uniqueNames('c', 'peer', 'n.1');
    expect(a.instance).not.toBe(b.instance);
    expect(a.host).not.toBe(b.host);
    expect(a.instance).toMatch(/^c-peer-n-1-[0-9a-f]{8}$/);
    expect(a.host).toMatch(/^[a-z0-9-]{1,63}\.local$/);
    const long = uniqueNames('x'.repeat(63), 'coordinator', 'y'.repeat(64));
    expect(long.instance.length).toBeLessThanOrEqual(63);
    expect(long.instance).toMatch(/-[0-9a-f]{8}$/);
  });
});
