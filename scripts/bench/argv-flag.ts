/**
 * The word after `--name` in this process's arguments, or `fallback`: the transport benchmarks'
 * loose flag reading (other words, such as transport.ts's `--receiver` role, are left alone).
 */
export function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}
