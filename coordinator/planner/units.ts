/**
 * Sizes and rates as people write them on a command line or in peers.json: `2GiB`, `512MB`, `1Gbit`,
 * `100Mbit/s`, `125MB/s`. Binary prefixes (KiB, MiB, GiB) are powers of 1024, decimal ones (KB, MB,
 * GB; bit rates always) powers of 1000, as on network gear.
 */
export class UnitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnitError';
  }
}

const BYTE_UNITS: Record<string, number> = {
  b: 1, '': 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** Bits per second for each rate unit; byte rates (`MB/s`) are converted with × 8. */
const BIT_RATE_UNITS: Record<string, number> = {
  bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12,
  bps: 1, kbps: 1e3, mbps: 1e6, gbps: 1e9,
};

function split(text: string): { value: number; unit: string } | undefined {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)(?:e(\d+))?\s*([a-zA-Z/]*)\s*$/.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]) * 10 ** Number(match[2] ?? 0);
  return { value, unit: match[3]!.toLowerCase() };
}

/** `2GiB`, `1.5GB`, `512MiB`, `1e9` → bytes. */
export function parseBytes(text: string | number, what = 'size'): number {
  if (typeof text === 'number') {
    if (!(Number.isFinite(text) && text >= 0)) throw new UnitError(`${what} must be a non-negative number of bytes, got ${text}`);
    return text;
  }
  const parts = split(text);
  const factor = parts ? BYTE_UNITS[parts.unit] : undefined;
  if (!parts || factor === undefined) {
    throw new UnitError(`${what}: cannot read '${text}' as a size; write e.g. 2GiB, 512MiB, 1.5GB or a number of bytes`);
  }
  return parts.value * factor;
}

/** `1Gbit`, `100Mbit/s`, `10Gbps`, `125MB/s`, `1GiB/s` → bytes per second. */
export function parseBandwidth(text: string | number, what = 'bandwidth'): number {
  if (typeof text === 'number') {
    if (!(Number.isFinite(text) && text > 0)) throw new UnitError(`${what} must be a positive number of bytes per second, got ${text}`);
    return text;
  }
  const parts = split(text);
  if (parts && parts.value > 0) {
    const perSecond = parts.unit.endsWith('/s');
    const base = perSecond ? parts.unit.slice(0, -2) : parts.unit;
    const bits = BIT_RATE_UNITS[base];
    if (bits !== undefined) return (parts.value * bits) / 8;
    const bytes = BYTE_UNITS[base];
    // A byte unit needs its "/s" (and a unit at all): "125MB" alone is a size, not a rate.
    if (perSecond && base !== '' && bytes !== undefined) return parts.value * bytes;
  }
  throw new UnitError(`${what}: cannot read '${text}' as a bandwidth; write e.g. 1Gbit, 100Mbit/s, 10Gbps or 125MB/s`);
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** Bytes per second as bits per second, the way links are sold (and as MB/s for loopback-fast ones). */
export function formatBandwidth(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(bits >= 1e10 ? 0 : 1)} Gbit/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(bits >= 1e8 ? 0 : 1)} Mbit/s`;
  return `${(bits / 1e3).toFixed(1)} kbit/s`;
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  return `${(ms * 1000).toFixed(0)} µs`;
}

/** 12 345 678 → "12.3 M"; for FLOP counts and parameters. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(Math.round(n));
}
