/** The nccl-tests style table of `npm run bench:allreduce`: one row per size, ours beside gloo. */
import type { SizeResult } from './allreduce-runners.js';

export interface TableColumn {
  name: string;
  /** Median over runs, per size (same order as sizes). */
  results: SizeResult[];
}

/** busbw = algbw · 2(n−1)/n: what each link carries in a ring all-reduce, as in nccl-tests. */
export function busBandwidth(bytes: number, seconds: number, peers: number): number {
  return peers === 1 ? 0 : ((bytes / seconds) * 2 * (peers - 1)) / peers;
}

function sizeLabel(bytes: number): string {
  return bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`;
}

function gbps(bytesPerSecond: number): string {
  return (bytesPerSecond / 1e9).toPrecision(4);
}

/** `linkBytesPerSecond`: on a capped LAN, also show busbw as a share of the link rate. */
export function formatTable(peers: number, columns: TableColumn[], reference?: string, linkBytesPerSecond?: number): string {
  const header = ['size'];
  const align = ['--:'];
  for (const column of columns) {
    header.push(`${column.name} ms`, `${column.name} algbw GB/s`, `${column.name} busbw GB/s`, ...(linkBytesPerSecond ? [`${column.name} busbw/link`] : []), `${column.name} check`);
    align.push('--:', '--:', '--:', ...(linkBytesPerSecond ? ['--:'] : []), ':-:');
  }
  const ref = columns.find((c) => c.name === reference);
  const ours = columns[0];
  if (ref && ours && ref !== ours) {
    header.push(`${ours.name}/${ref.name} busbw`);
    align.push('--:');
  }
  const rows = [header, align];
  const sizes = columns[0]?.results.map((r) => r.bytes) ?? [];
  sizes.forEach((bytes, index) => {
    const row = [sizeLabel(bytes)];
    for (const column of columns) {
      const result = column.results[index]!;
      const busbw = busBandwidth(bytes, result.seconds, peers);
      row.push((result.seconds * 1000).toFixed(2), gbps(bytes / result.seconds), gbps(busbw));
      if (linkBytesPerSecond) row.push(`${((busbw / linkBytesPerSecond) * 100).toFixed(1)}%`);
      row.push(result.correct ? 'ok' : 'WRONG');
    }
    if (ref && ours && ref !== ours) row.push(`${((ref.results[index]!.seconds / ours.results[index]!.seconds) * 100).toFixed(0)}%`);
    rows.push(row);
  });
  return rows.map((row) => `| ${row.join(' | ')} |`).join('\n');
}

/** Where our time went per size (mean per rank per all-reduce). */
export function formatProfile(column: TableColumn): string {
  const rows = ['| size | chunk | total ms | waiting for data ms | decode + reduce ms |', '|--:|--:|--:|--:|--:|'];
  for (const r of column.results) {
    const chunk = r.chunkBytes === undefined ? '–' : sizeLabel(r.chunkBytes);
    rows.push(`| ${sizeLabel(r.bytes)} | ${chunk} | ${(r.seconds * 1000).toFixed(2)} | ${(r.receiveWaitMs ?? NaN).toFixed(2)} | ${(r.reduceMs ?? NaN).toFixed(2)} |`);
  }
  return rows.join('\n');
}

/**
 * CPU time per rank and all-reduce (user + kernel), per column: on a loaded machine wall time says
 * how much of the cores we got, CPU time how much work the all-reduce needs.
 */
export function formatCpu(columns: TableColumn[]): string {
  const header = ['size', ...columns.map((c) => `${c.name} user ms`), ...columns.map((c) => `${c.name} kernel ms`), ...columns.map((c) => `${c.name} total ms`),
    ...columns.map((c) => `${c.name} switches vol/invol`)];
  const rows = [header, header.map((_, i) => (i === 0 ? '--:' : '--:'))];
  columns[0]?.results.forEach((first, index) => {
    const cpu = columns.map((c) => c.results[index]!);
    const ms = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(1));
    rows.push([
      sizeLabel(first.bytes),
      ...cpu.map((r) => ms(r.userCpuMs)),
      ...cpu.map((r) => ms(r.systemCpuMs)),
      ...cpu.map((r) => ms(r.userCpuMs === undefined || r.systemCpuMs === undefined ? undefined : r.userCpuMs + r.systemCpuMs)),
      ...cpu.map((r) => `${(r.voluntarySwitches ?? NaN).toFixed(0)}/${(r.involuntarySwitches ?? NaN).toFixed(0)}`),
    ]);
  });
  return rows.map((row) => `| ${row.join(' | ')} |`).join('\n');
}

/** Per size, the run with the median time (its check and profile travel with it). */
export function medianResults(runs: SizeResult[][]): SizeResult[] {
  return runs[0]!.map((_, index) => {
    const candidates = runs.map((run) => run[index]!).sort((a, b) => a.seconds - b.seconds);
    const chosen = candidates[Math.floor((candidates.length - 1) / 2)]!;
    return { ...chosen, correct: candidates.every((c) => c.correct) };
  });
}
