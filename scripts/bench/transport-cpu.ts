/**
 * npm run bench:transport-cpu — CPU time per tensor frame, both ends in ONE process on loopback:
 * a ringpipe Link (sendTensor → nextTensor({ into })) vs a plain TCP socket carrying the same
 * length-prefixed frames (the receiver copies each payload into a reusable buffer).
 *
 * On a machine shared with other work, wall-clock throughput swings with the load; the CPU this
 * process spends per frame (user + system, kernel copies included on both sides) does much less,
 * so it shows what the per-frame path costs. Rounds are interleaved (link, tcp, link, tcp, …) and
 * each cell is the median over rounds. Also reported: JS heap bytes allocated per frame (nearly
 * independent of the load) and garbage collections per 1,000 frames.
 *
 *   npx tsx scripts/bench/transport-cpu.ts [--rounds 7] [--frames 4096] [--sizes 64K,1M] [--in-flight 4] [--only link|tcp]
 *
 * `--only link` (or tcp) runs one side alone, e.g. under `node --cpu-prof --import tsx …` to see
 * where that side's time goes.
 */
import { once } from 'node:events';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import v8 from 'node:v8';
import { z } from 'zod';
import { connect, defineMessages, listen, type Link, type MessageOf } from '../../shared/transport/index.js';
import { argument } from './argv-flag.js';
import { rightAlignedMarkdownTable } from './markdown-table.js';
import { median } from './median.js';

const messages = defineMessages({ noop: {} });
type Message = MessageOf<typeof messages>;
const SECRET = 'bench-transport-cpu-secret-0123456789';
const LIMITS = { maxTensorBytes: 16 * 1024 * 1024, receiveWindowBytes: 32 * 1024 * 1024 };

function parseSize(text: string): number {
  const match = /^(\d+)([KM]?)$/i.exec(text.trim());
  if (!match) throw new Error(`bad size '${text}': use e.g. 64K, 1M`);
  const unit = match[2]?.toUpperCase() === 'M' ? 1024 * 1024 : match[2]?.toUpperCase() === 'K' ? 1024 : 1;
  return Number(match[1]) * unit;
}

/**
 * JS heap bytes allocated while it runs: what each collection freed plus what is still in use at
 * the end (v8.GCProfiler reports the heap size before and after every collection). Unlike CPU
 * time this barely depends on the machine's load, so it shows what the per-frame path allocates.
 * Memory outside the JS heap (the socket's read buffers) is not counted.
 */
async function heapAllocated(body: () => Promise<void>): Promise<{ bytes: number; collections: number; gcMs: number }> {
  const profiler = new v8.GCProfiler();
  const before = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  await body();
  const after = v8.getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop() as { statistics: { cost: number; beforeGC: { heapStatistics: { usedHeapSize: number } }; afterGC: { heapStatistics: { usedHeapSize: number } } }[] };
  let bytes = 0;
  let last = before;
  let gcMs = 0;
  for (const gc of statistics) {
    bytes += gc.beforeGC.heapStatistics.usedHeapSize - last;
    last = gc.afterGC.heapStatistics.usedHeapSize;
    gcMs += gc.cost / 1000;
  }
  bytes += after - last;
  return { bytes, collections: statistics.length, gcMs };
}

interface Sample {
  cpuUsPerFrame: number;
  wallUsPerFrame: number;
  heapBytesPerFrame: number;
  gcPer1kFrames: number;
}

async function measure(frames: number, body: () => Promise<void>): Promise<Sample> {
  let cpu = { user: 0, system: 0 };
  let wallUs = 0;
  const heap = await heapAllocated(async () => {
    const startCpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    await body();
    wallUs = Number(process.hrtime.bigint() - start) / 1e3;
    cpu = process.cpuUsage(startCpu);
  });
  return {
    cpuUsPerFrame: (cpu.user + cpu.system) / frames,
    wallUsPerFrame: wallUs / frames,
    heapBytesPerFrame: heap.bytes / frames,
    gcPer1kFrames: (heap.collections * 1000) / frames,
  };
}

async function linkRound(sender: Link<Message>, receiver: Link<Message>, payload: Float32Array, into: Float32Array, frames: number, inFlight: number): Promise<void> {
  const received = (async () => {
    for (let i = 0; i < frames; i++) await receiver.nextTensor({ into, timeoutMs: 60_000 });
  })();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < frames; i++) {
    pending.push(sender.sendTensor({ epoch: 1, step: i, tensorId: 0 }, payload));
    if (pending.length >= inFlight) await pending.shift();
  }
  await Promise.all(pending);
  await received;
}

/** The receiving end of the TCP comparison: u32 length, then the payload copied into `into`. */
function tcpReceiver(socket: Socket, into: Uint8Array): { expect(frames: number): Promise<void> } {
  let header = 0;
  const lengthBytes = Buffer.alloc(4);
  let frameBytes = 0;
  let filled = 0;
  let framesLeft = 0;
  let done: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    let offset = 0;
    while (offset < chunk.length) {
      if (header < 4) {
        while (header < 4 && offset < chunk.length) lengthBytes[header++] = chunk[offset++] as number;
        if (header === 4) frameBytes = lengthBytes.readUInt32LE(0);
        continue;
      }
      const take = Math.min(frameBytes - filled, chunk.length - offset);
      into.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === frameBytes) {
        filled = 0;
        header = 0;
        if (--framesLeft === 0) done?.();
      }
    }
  });
  return {
    expect(frames: number) {
      framesLeft = frames;
      return new Promise<void>((resolve) => (done = resolve));
    },
  };
}

async function tcpRound(socket: Socket, receiver: { expect(frames: number): Promise<void> }, payload: Uint8Array, frames: number): Promise<void> {
  const received = receiver.expect(frames);
  const lengthPrefix = Buffer.alloc(4);
  lengthPrefix.writeUInt32LE(payload.length, 0);
  for (let i = 0; i < frames; i++) {
    socket.write(lengthPrefix);
    if (!socket.write(payload)) await once(socket, 'drain');
  }
  await received;
}

async function main(): Promise<void> {
  const rounds = Number(argument('rounds', '7'));
  const framesFor64K = Number(argument('frames', '4096'));
  const inFlight = Number(argument('in-flight', '4'));
  const sizes = argument('sizes', '64K,1M').split(',').map(parseSize);
  const only = argument('only', 'both');
  if (!['both', 'link', 'tcp'].includes(only)) throw new Error(`--only ${only}: expected link or tcp`);

  let accepted: ((link: Link<Message>) => void) | undefined;
  const acceptedLink = new Promise<Link<Message>>((resolve) => (accepted = resolve));
  const server = await listen<Message>({ cluster: 'bench', nodeId: 'receiver', role: 'receiver', messages, secret: SECRET, limits: LIMITS, onLink: (l) => accepted?.(l) });
  const sender = await connect<Message>({ host: '127.0.0.1', port: server.port, cluster: 'bench', nodeId: 'sender', role: 'sender', messages, secret: SECRET, limits: LIMITS });
  const receiver = await acceptedLink;

  const into = new Uint8Array(16 * 1024 * 1024);
  const tcpServer = createNetServer();
  tcpServer.listen(0, '127.0.0.1');
  await once(tcpServer, 'listening');
  const serverSocket = once(tcpServer, 'connection');
  const tcpClient = netConnect({ host: '127.0.0.1', port: (tcpServer.address() as { port: number }).port });
  tcpClient.setNoDelay(true);
  await once(tcpClient, 'connect');
  const [tcpServerSide] = (await serverSocket) as [Socket];
  tcpServerSide.setNoDelay(true);
  const tcpIn = tcpReceiver(tcpServerSide, into);

  const loadBefore = loadavg()[0] ?? 0;
  console.log(`transport CPU per frame, both ends in one process on loopback, ${inFlight} sends in flight, median of ${rounds} interleaved rounds\n`);
  const header = ['frame size', 'frames', 'link CPU µs/frame', 'tcp CPU µs/frame', 'link − tcp', 'tcp/link CPU', 'link heap B/frame', 'tcp heap B/frame', 'link GCs/1k', 'tcp GCs/1k'];
  const rows: string[][] = [];
  for (const size of sizes) {
    const frames = Math.max(64, Math.round((framesFor64K * 64 * 1024) / size));
    const bytes = new Uint8Array(size);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
    const floats = new Float32Array(bytes.buffer);
    const intoFloats = new Float32Array(into.buffer, 0, size / 4);
    // Warm-up: JIT, buffer pools and first touch of the destination memory.
    await linkRound(sender, receiver, floats, intoFloats, Math.min(frames, 256), inFlight);
    await tcpRound(tcpClient, tcpIn, bytes, Math.min(frames, 256));
    const link: Sample[] = [];
    const tcp: Sample[] = [];
    for (let round = 0; round < rounds; round++) {
      if (only !== 'tcp') link.push(await measure(frames, () => linkRound(sender, receiver, floats, intoFloats, frames, inFlight)));
      if (only !== 'link') tcp.push(await measure(frames, () => tcpRound(tcpClient, tcpIn, bytes, frames)));
      for (let i = 0; i < size; i += 4093) if (into[i] !== i % 251) throw new Error(`received bytes differ at ${i}`);
    }
    const m = (samples: Sample[], key: keyof Sample) => (samples.length === 0 ? NaN : median(samples.map((s) => s[key])));
    const linkCpu = m(link, 'cpuUsPerFrame');
    const tcpCpu = m(tcp, 'cpuUsPerFrame');
    rows.push([
      size >= 1024 * 1024 ? `${size / 1024 / 1024} MiB` : `${size / 1024} KiB`,
      String(frames),
      linkCpu.toFixed(1),
      tcpCpu.toFixed(1),
      (linkCpu - tcpCpu).toFixed(1),
      `${((tcpCpu / linkCpu) * 100).toFixed(0)}%`,
      m(link, 'heapBytesPerFrame').toFixed(0),
      m(tcp, 'heapBytesPerFrame').toFixed(0),
      m(link, 'gcPer1kFrames').toFixed(1),
      m(tcp, 'gcPer1kFrames').toFixed(1),
    ]);
  }
  for (const line of rightAlignedMarkdownTable(header, rows)) console.log(line);
  console.log(`\nmachine: ${cpus().length} cores, load average ${loadBefore.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}`);
  sender.close('benchmark done');
  await server.close();
  tcpClient.destroy();
  tcpServer.close();
}

await main();
