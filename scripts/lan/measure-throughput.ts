import { fileURLToPath } from 'node:url';
import { JsonLineReader, nodeWithTsx } from './child-output.js';
import type { Lan } from './lan.js';

const PROBE = fileURLToPath(new URL('./throughput-probe.ts', import.meta.url));

export interface ThroughputOptions {
  from: number;
  to: number;
  /** Measurement window after warm-up. */
  seconds?: number;
  warmupSeconds?: number;
  port?: number;
}

export interface ThroughputResult {
  mbit: number;
  bytes: number;
  seconds: number;
}

/** Measures plain-TCP goodput from host `from` to host `to` (node:net, one connection). */
export async function measureThroughput(lan: Lan, options: ThroughputOptions): Promise<ThroughputResult> {
  const { from, to, seconds = 1, warmupSeconds = 0.3, port = 5201 } = options;
  const sender = lan.hosts[from];
  const receiver = lan.hosts[to];
  if (!sender || !receiver) throw new Error(`hosts ${from} and ${to} must exist (the LAN has ${lan.hosts.length})`);
  const startupMs = 15_000;
  const [node, receiveArgs] = nodeWithTsx(PROBE, ['receive', '--port', String(port), '--seconds', String(seconds), '--warmup', String(warmupSeconds)]);
  const receiving = receiver.exec(node, receiveArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  const receiverOut = new JsonLineReader(receiving, `throughput receiver on ${receiver.name}`);
  let sending: ReturnType<typeof sender.exec> | undefined;
  try {
    await receiverOut.waitFor((l) => l.event === 'listening', startupMs, 'the listening socket');
    const [, sendArgs] = nodeWithTsx(PROBE, ['send', '--to', `${receiver.address}:${port}`]);
    sending = sender.exec(node, sendArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
    const result = await receiverOut.waitFor((l) => l.event === 'result', startupMs + (warmupSeconds + seconds) * 1000, 'the measurement');
    return { mbit: Number(result.mbit), bytes: Number(result.bytes), seconds: Number(result.seconds) };
  } finally {
    receiving.kill('SIGKILL');
    sending?.kill('SIGKILL');
  }
}
