/**
 * npm run bench:transport — tensor-frame throughput between two processes on loopback:
 * a ringpipe Link vs a plain TCP socket (node:net) moving the same bytes.
 *
 *   link        sendTensor → nextTensor({ into: reusable buffer })   (authenticated, flow-controlled)
 *   tcp-framed  length-prefixed frames, receiver copies each payload into a reusable buffer
 *   tcp-raw     the sender writes the same bytes, the receiver only counts them (the floor of the cost)
 *
 * Each cell is the median of --runs runs (default 5), runs interleaved so machine noise hits all
 * three alike. Beside MB/s: CPU time of both processes per frame (process.cpuUsage on each side).
 * Options: --runs N, --mib M (bytes per run), --sizes 64K,1M,4M, --modes link,framed,raw.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { connect, defineMessages, listen, type Link, type MessageOf } from '../../shared/transport/index.js';
import { argument } from './argv-flag.js';
import { rightAlignedMarkdownTable } from './markdown-table.js';
import { median } from './median.js';

const benchMessages = defineMessages({
  benchRun: { frames: z.number().int().positive(), frameBytes: z.number().int().positive() },
  benchDone: { ok: z.boolean(), cpuMicros: z.number() },
});
type BenchMessage = MessageOf<typeof benchMessages>;

const CLUSTER = 'bench-transport';
const SECRET = 'bench-transport-secret-0123456789';
const PATTERN_MOD = 251;

function fillPattern(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % PATTERN_MOD;
}

/** Spot-checks a received frame: 64 positions spread over it must hold the pattern. */
function checkPattern(bytes: Uint8Array): boolean {
  const step = Math.max(1, Math.floor(bytes.length / 64));
  for (let i = 0; i < bytes.length; i += step) if (bytes[i] !== i % PATTERN_MOD) return false;
  return bytes[bytes.length - 1] === (bytes.length - 1) % PATTERN_MOD;
}

/** CPU time (user + system) this process used since `start`, in microseconds. */
function cpuMicrosSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

// ---------------------------------------------------------------------------------------------
// receiver process
// ---------------------------------------------------------------------------------------------

async function runReceiver(): Promise<void> {
  const reusable = new Float32Array(64 * 1024 * 1024 / 4);
  const server = await listen<BenchMessage>({
    cluster: CLUSTER,
    nodeId: 'bench-receiver',
    role: 'receiver',
    messages: benchMessages,
    secret: SECRET,
    limits: { maxTensorBytes: 16 * 1024 * 1024, receiveWindowBytes: 32 * 1024 * 1024 },
    onLink(link) {
      link.onControl('benchRun', (run) => {
        void (async () => {
          let ok = true;
          const cpu = process.cpuUsage();
          for (let i = 0; i < run.frames; i++) {
            const frame = await link.nextTensor({ into: reusable, timeoutMs: 60_000 });
            if (i === run.frames - 1) ok = checkPattern(new Uint8Array(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength));
          }
          await link.sendControl({ type: 'benchDone', ok, cpuMicros: cpuMicrosSince(cpu) });
        })().catch((error) => console.error('receiver error', error));
      });
    },
  });
  const tcp = createNetServer((socket) => receiveTcp(socket, new Uint8Array(reusable.buffer)));
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const tcpPort = (tcp.address() as { port: number }).port;
  process.stdout.write(JSON.stringify({ linkPort: server.port, tcpPort }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

/**
 * One TCP run: an 9-byte preamble (mode, frames u32, frameBytes u32), then frames. In framed mode
 * each frame is a u32 length + payload copied into `reusable`; in raw mode bytes are only counted.
 * The reply: 1 byte ok, then the receiver's CPU microseconds for the run (f64 LE).
 */
function receiveTcp(socket: Socket, reusable: Uint8Array): void {
  socket.setNoDelay(true);
  let preamble: Buffer | undefined = Buffer.alloc(0);
  let raw = false;
  let remainingBytes = 0;
  let frameBytes = 0;
  let framesLeft = 0;
  let lengthBytes = Buffer.alloc(0);
  let filled = 0;
  let ok = true;
  let cpu = process.cpuUsage();
  const finish = (): void => {
    const reply = Buffer.alloc(9);
    reply[0] = ok ? 1 : 0;
    reply.writeDoubleLE(cpuMicrosSince(cpu), 1);
    socket.write(reply);
  };
  socket.on('data', (chunk: Buffer) => {
    let data = chunk;
    if (preamble) {
      if (preamble.length === 0) cpu = process.cpuUsage();
      preamble = Buffer.concat([preamble, data]);
      if (preamble.length < 9) return;
      raw = preamble[0] === 1;
      framesLeft = preamble.readUInt32LE(1);
      frameBytes = preamble.readUInt32LE(5);
      remainingBytes = framesLeft * frameBytes;
      data = preamble.subarray(9);
      preamble = undefined;
    }
    if (raw) {
      remainingBytes -= data.length;
      if (remainingBytes === 0) finish();
      return;
    }
    let offset = 0;
    while (offset < data.length) {
      if (lengthBytes.length < 4) {
        const take = Math.min(4 - lengthBytes.length, data.length - offset);
        lengthBytes = Buffer.concat([lengthBytes, data.subarray(offset, offset + take)]);
        offset += take;
        continue;
      }
      const need = frameBytes - filled;
      const take = Math.min(need, data.length - offset);
      reusable.set(data.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === frameBytes) {
        framesLeft--;
        filled = 0;
        lengthBytes = Buffer.alloc(0);
        if (framesLeft === 0) {
          ok = checkPattern(reusable.subarray(0, frameBytes));
          finish();
        }
      }
    }
  });
  socket.on('error', () => socket.destroy());
}

// ---------------------------------------------------------------------------------------------
// sender (the benchmark driver)
// ---------------------------------------------------------------------------------------------

interface RunResult {
  seconds: number;
  ok: boolean;
  /** CPU time of both processes for the run, µs (sender measured here, receiver reported back). */
  cpuMicros: number;
}

async function linkRun(link: Link<BenchMessage>, payload: Float32Array, frames: number): Promise<RunResult> {
  const done = link.nextControl('benchDone', { timeoutMs: 120_000 });
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await link.sendControl({ type: 'benchRun', frames, frameBytes: payload.byteLength });
  // Keep a few sends in flight, as a ring step would; each resolves once its bytes hit the kernel.
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < frames; i++) {
    inFlight.push(link.sendTensor({ epoch: 1, step: i, tensorId: 0 }, payload));
    if (inFlight.length >= 4) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const reply = await done;
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, ok: reply.ok, cpuMicros: cpuMicrosSince(cpu) + reply.cpuMicros };
}

async function tcpRun(port: number, payload: Uint8Array, frames: number, raw: boolean): Promise<RunResult> {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const ack = readReply(socket);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const preamble = Buffer.alloc(9);
  preamble[0] = raw ? 1 : 0;
  preamble.writeUInt32LE(frames, 1);
  preamble.writeUInt32LE(payload.length, 5);
  socket.write(preamble);
  const lengthPrefix = Buffer.alloc(4);
  lengthPrefix.writeUInt32LE(payload.length, 0);
  for (let i = 0; i < frames; i++) {
    if (!raw) socket.write(lengthPrefix);
    if (!socket.write(payload)) await once(socket, 'drain');
  }
  const reply = await ack;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const senderMicros = cpuMicrosSince(cpu);
  socket.destroy();
  return { seconds, ok: reply[0] === 1, cpuMicros: senderMicros + reply.readDoubleLE(1) };
}

/** The receiver's 9-byte reply, however TCP splits it. */
function readReply(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 9) resolve(got);
    });
    socket.once('error', reject);
  });
}

function parseSize(text: string): number {
  const match = /^(\d+)([KM]?)$/i.exec(text.trim());
  if (!match) throw new Error(`bad size '${text}': use e.g. 64K, 1M, 4M`);
  const unit = match[2]?.toUpperCase() === 'M' ? 1024 * 1024 : match[2]?.toUpperCase() === 'K' ? 1024 : 1;
  return Number(match[1]) * unit;
}

function formatSize(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MiB` : `${bytes / 1024} KiB`;
}

async function runSender(): Promise<void> {
  const runs = Number(argument('runs', '5'));
  const mibPerRun = Number(argument('mib', '256'));
  const sizes = argument('sizes', '64K,1M,4M').split(',').map(parseSize);
  // --modes link: only the link (e.g. under strace or --cpu-prof); the other columns then read NaN.
  const modes = new Set(argument('modes', 'link,framed,raw').split(','));

  // `node --cpu-prof --cpu-prof-interval=100 --import tsx scripts/bench/transport.ts` profiles the receiver too.
  const profileFlags = process.execArgv.filter((flag) => flag.startsWith('--cpu-prof'));
  const child: ChildProcess = spawn(process.execPath, [...profileFlags, '--import', 'tsx', fileURLToPath(import.meta.url), '--receiver'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, RINGPIPE_LOG_LEVEL: 'warn' },
  });
  const lines = createInterface({ input: child.stdout! });
  let startTimer: NodeJS.Timeout | undefined;
  const [firstLine] = (await Promise.race([
    once(lines, 'line'),
    new Promise((_, reject) => (startTimer = setTimeout(() => reject(new Error('receiver did not start within 30 s')), 30_000))),
  ])) as [string];
  clearTimeout(startTimer);
  const { linkPort, tcpPort } = JSON.parse(firstLine) as { linkPort: number; tcpPort: number };

  const link = await connect<BenchMessage>({
    host: '127.0.0.1',
    port: linkPort,
    cluster: CLUSTER,
    nodeId: 'bench-sender',
    role: 'sender',
    messages: benchMessages,
    secret: SECRET,
    limits: { maxTensorBytes: 16 * 1024 * 1024, receiveWindowBytes: 32 * 1024 * 1024 },
    logger: undefined,
  });

  const loadBefore = loadavg()[0] ?? 0;
  console.log(`transport throughput, loopback, 2 processes, ${mibPerRun} MiB per run, median of ${runs} runs (MB/s = 1e6 bytes/s)\n`);
  const header = [
    'frame size', 'frames', 'link MB/s', 'tcp-framed MB/s', 'tcp-raw MB/s', 'link/tcp-raw', 'link/tcp-framed',
    'link CPU µs/frame', 'tcp-framed CPU', 'tcp-raw CPU', 'CPU tcp-raw/link', 'CPU tcp-framed/link', 'check',
  ];
  const rows: string[][] = [];
  for (const size of sizes) {
    const frames = Math.max(8, Math.round((mibPerRun * 1024 * 1024) / size));
    const bytes = new Uint8Array(size);
    fillPattern(bytes);
    const floats = new Float32Array(bytes.buffer);
    const times = { link: [] as number[], framed: [] as number[], raw: [] as number[] };
    // CPU of both processes per frame: on a loaded machine wall-clock swings with the scheduler,
    // CPU time much less (it is what each frame costs, whoever else runs).
    const cpu = { link: [] as number[], framed: [] as number[], raw: [] as number[] };
    let ok = true;
    // One warm-up of each so first-touch costs do not land in the first measured run.
    await linkRun(link, floats, Math.min(frames, 16));
    await tcpRun(tcpPort, bytes, Math.min(frames, 16), false);
    for (let run = 0; run < runs; run++) {
      const skipped: RunResult = { seconds: NaN, ok: true, cpuMicros: NaN };
      const a = modes.has('link') ? await linkRun(link, floats, frames) : skipped;
      const b = modes.has('framed') ? await tcpRun(tcpPort, bytes, frames, false) : skipped;
      const c = modes.has('raw') ? await tcpRun(tcpPort, bytes, frames, true) : skipped;
      times.link.push(a.seconds);
      times.framed.push(b.seconds);
      times.raw.push(c.seconds);
      cpu.link.push(a.cpuMicros / frames);
      cpu.framed.push(b.cpuMicros / frames);
      cpu.raw.push(c.cpuMicros / frames);
      ok &&= a.ok && b.ok && c.ok;
    }
    const rate = (seconds: number[]): number => (frames * size) / median(seconds) / 1e6;
    const linkRate = rate(times.link);
    const framedRate = rate(times.framed);
    const rawRate = rate(times.raw);
    rows.push([
      formatSize(size),
      String(frames),
      linkRate.toFixed(0),
      framedRate.toFixed(0),
      rawRate.toFixed(0),
      `${((linkRate / rawRate) * 100).toFixed(0)}%`,
      `${((linkRate / framedRate) * 100).toFixed(0)}%`,
      median(cpu.link).toFixed(1),
      median(cpu.framed).toFixed(1),
      median(cpu.raw).toFixed(1),
      `${((median(cpu.raw) / median(cpu.link)) * 100).toFixed(0)}%`,
      `${((median(cpu.framed) / median(cpu.link)) * 100).toFixed(0)}%`,
      ok ? 'ok' : 'MISMATCH',
    ]);
  }
  for (const line of rightAlignedMarkdownTable(header, rows)) console.log(line);
  console.log('\ntarget: link ≥ 80% of plain TCP');
  console.log(`machine: ${cpus().length} cores, load average ${loadBefore.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)} (other work competes for the cores: compare columns, not runs)`);

  link.close('benchmark done');
  child.stdin?.end();
  await once(child, 'exit');
  if (rows.some((row) => row[row.length - 1] !== 'ok')) process.exitCode = 1;
}

if (process.argv.includes('--receiver')) {
  await runReceiver();
} else {
  await runSender();
}
