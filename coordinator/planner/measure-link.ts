import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { LinkMeasurement } from './cluster.js';

/** The loopback link between two processes of this machine, as the planner measured it. */
export interface LoopbackMeasurement extends LinkMeasurement {
  /** Half the median round trip of a 1-byte message between two otherwise idle processes. */
  idleLatencyMs: number;
  /**
   * Extra delay per message between two processes that compute between messages (as peers do):
   * on a busy machine a process woken by a message waits for a core. The mean, not the median: a
   * step pays the sum of its messages' delays, long waits included. This is `latencyMs`.
   */
  busyHandoffMs: number;
}

/**
 * The far end, in a process of its own as a second peer would be. First byte of a connection says
 * what it is for: 'E' echo every byte (round trips); 'B' bulk: count bytes, answer one byte per
 * `expected` received; 'H' handoff: on every byte, compute `busyMs` of CPU time, then answer with
 * the wall time that took (so the near end can subtract it). Plain JS, started with `node -e`.
 */
const FAR_END = `
const net = require('node:net');
const expected = Number(process.argv[1]);
const busyMs = Number(process.argv[2]);
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
let sink = 0;
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.once('data', (first) => {
    const kind = first[0];
    const rest = first.subarray(1);
    if (kind === 0x45) {
      socket.on('data', (chunk) => socket.write(chunk));
      if (rest.length > 0) socket.write(rest);
    } else if (kind === 0x42) {
      let received = rest.length;
      const check = () => { while (received >= expected) { received -= expected; socket.write(Buffer.from([1])); } };
      check();
      socket.on('data', (chunk) => { received += chunk.length; check(); });
    } else {
      const onByte = () => {
        const wall = performance.now();
        const until = cpuMs() + busyMs;
        while (cpuMs() < until) sink += Math.sqrt(sink + 1);
        const reply = Buffer.alloc(8);
        reply.writeDoubleLE(performance.now() - wall);
        socket.write(reply);
      };
      socket.on('data', (chunk) => { for (let i = 0; i < chunk.length; i++) onByte(); });
      for (let i = 0; i < rest.length; i++) onByte();
    }
  });
  socket.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

const cpuNowMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

let sink = 0;
/** Computes for `ms` of this process's CPU time (however long that takes on the wall clock). */
function burnCpu(ms: number): void {
  const until = cpuNowMs() + ms;
  while (cpuNowMs() < until) sink += Math.sqrt(sink + 1);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`loopback link measurement: ${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function startFarEnd(bytes: number, busyMs: number, ownSession: boolean): { child: ChildProcess; port: Promise<number> } {
  // In a session of its own (as npm start starts peers) unless the peers share their launcher's.
  const child = spawn(process.execPath, ['-e', FAR_END, String(bytes), String(busyMs)], { stdio: ['pipe', 'pipe', 'inherit'], detached: ownSession });
  const port = new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) resolve(Number(text.trim()));
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the far end exited (code ${code}) before listening`)));
  });
  return { child, port };
}

function connect(port: number, kind: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write(Buffer.from([kind]));
      resolve(socket);
    });
    socket.setNoDelay(true);
    socket.once('error', reject);
  });
}

/** Reads exactly `bytes` bytes (replies can be split or merged by TCP). */
function readExactly(socket: net.Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < bytes) return;
      socket.off('data', onData);
      const all = Buffer.concat(chunks);
      if (all.length > bytes) socket.unshift(all.subarray(bytes));
      resolve(all.subarray(0, bytes));
    };
    socket.on('data', onData);
  });
}

export interface MeasureLoopbackOptions {
  /** Bulk transfer size; default 32 MiB. */
  bytes?: number;
  runs?: number;
  pings?: number;
  /** CPU milliseconds each side computes between handoff messages; default 3 (a micro-batch pass). */
  busyMs?: number;
  handoffs?: number;
  /** Peers started as plain children of one launcher (one session) rather than one session each. */
  oneSession?: boolean;
  timeoutMs?: number;
}

/**
 * Measures TCP over loopback between this process and another: what two peers of this machine get.
 * Bandwidth: `bytes` written in 1 MiB pieces until the far end has them (median of `runs`). Latency:
 * idle round trips, and handoffs between busy processes: each side computes `busyMs` of CPU, then
 * messages the other; the time a message adds beyond the other side's compute is the handoff delay.
 */
export async function measureLoopbackLink(options: MeasureLoopbackOptions = {}): Promise<LoopbackMeasurement> {
  const bytes = options.bytes ?? 32 * 2 ** 20;
  const runs = options.runs ?? 3;
  const pings = options.pings ?? 20;
  const busyMs = options.busyMs ?? 3;
  const handoffs = options.handoffs ?? 30;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const farEnd = startFarEnd(bytes, busyMs, !options.oneSession);
  const sockets: net.Socket[] = [];
  try {
    const port = await withTimeout(farEnd.port, timeoutMs, 'starting the far end');

    const echo = await connect(port, 0x45);
    sockets.push(echo);
    const roundTrips: number[] = [];
    for (let i = 0; i < pings; i++) {
      const started = performance.now();
      const reply = readExactly(echo, 1);
      echo.write(Buffer.from([0x50]));
      await withTimeout(reply, timeoutMs, 'a round trip');
      roundTrips.push(performance.now() - started);
    }

    const handoff = await connect(port, 0x48);
    sockets.push(handoff);
    const delays: number[] = [];
    for (let i = 0; i < handoffs; i++) {
      burnCpu(busyMs);
      const started = performance.now();
      const reply = readExactly(handoff, 8);
      handoff.write(Buffer.from([0x68]));
      const farBusyWallMs = (await withTimeout(reply, timeoutMs, 'a handoff')).readDoubleLE(0);
      // Two messages (there and back) around the far end's compute.
      delays.push(Math.max(0, (performance.now() - started - farBusyWallMs) / 2));
    }

    const bulk = await connect(port, 0x42);
    sockets.push(bulk);
    const piece = Buffer.alloc(2 ** 20, 0x5a);
    const seconds: number[] = [];
    for (let run = 0; run < runs + 1; run++) {
      const started = performance.now();
      const done = readExactly(bulk, 1);
      for (let sent = 0; sent < bytes; sent += piece.length) {
        const slice = sent + piece.length <= bytes ? piece : piece.subarray(0, bytes - sent);
        if (!bulk.write(slice)) await new Promise<void>((resolve) => bulk.once('drain', () => resolve()));
      }
      await withTimeout(done, timeoutMs, 'a bulk transfer');
      // The first run pays for TCP's window growth and fresh buffers.
      if (run > 0) seconds.push((performance.now() - started) / 1000);
    }
    const idleLatencyMs = median(roundTrips) / 2;
    const busyHandoffMs = delays.reduce((a, b) => a + b, 0) / delays.length;
    return { bytesPerSecond: bytes / median(seconds), latencyMs: Math.max(idleLatencyMs, busyHandoffMs), idleLatencyMs, busyHandoffMs };
  } finally {
    for (const socket of sockets) socket.destroy();
    const { child } = farEnd;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.end();
      await withTimeout(exited, 5_000, 'stopping the far end').catch(() => child.kill('SIGKILL'));
    }
  }
}
