/**
 * One end of a plain-TCP throughput measurement, run inside an emulated-LAN host:
 *   receive --port P --seconds S [--warmup W]   prints {"event":"listening"}, then one
 *       {"event":"result",...} line measured over S seconds after W seconds of warm-up
 *   send --to HOST:PORT                          writes as fast as TCP allows until closed
 * Kept free of project imports so it starts fast.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const CHUNK = Buffer.alloc(64 * 1024, 0x5a);

function fail(message: string): never {
  process.stderr.write(`throughput-probe: ${message}\n`);
  process.exit(2);
}

function receive(port: number, seconds: number, warmupSeconds: number): void {
  let total = 0;
  const server = net.createServer((socket) => {
    server.close();
    let startBytes = 0;
    let startTime = 0n;
    socket.on('data', (chunk: Buffer) => {
      if (total === 0) {
        // The clock starts at the first byte; the warm-up skips TCP slow start and tbf's initial burst.
        setTimeout(() => {
          startBytes = total;
          startTime = process.hrtime.bigint();
          setTimeout(() => {
            const elapsed = Number(process.hrtime.bigint() - startTime) / 1e9;
            const bytes = total - startBytes;
            process.stdout.write(`${JSON.stringify({ event: 'result', bytes, seconds: elapsed, mbit: (bytes * 8) / elapsed / 1e6 })}\n`);
            socket.destroy();
            process.exit(0);
          }, seconds * 1000);
        }, warmupSeconds * 1000);
      }
      total += chunk.length;
    });
    socket.on('error', () => undefined);
  });
  server.listen(port, '0.0.0.0', () => process.stdout.write(`${JSON.stringify({ event: 'listening', port })}\n`));
}

function send(target: string): void {
  const colon = target.lastIndexOf(':');
  const host = target.slice(0, colon);
  const port = Number(target.slice(colon + 1));
  if (colon < 1 || !Number.isInteger(port)) fail(`--to must be host:port, got ${target}`);
  const socket = net.connect({ host, port }, () => {
    const pump = () => {
      while (socket.write(CHUNK));
    };
    socket.on('drain', pump);
    pump();
  });
  // The receiver hangs up when it has its number: that is the normal end.
  socket.on('error', () => process.exit(0));
  socket.on('close', () => process.exit(0));
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { port: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' }, to: { type: 'string' } },
});
const mode = positionals[0];
if (mode === 'receive') receive(Number(values.port ?? 5201), Number(values.seconds ?? 1), Number(values.warmup ?? 0.3));
else if (mode === 'send') send(values.to ?? fail('send needs --to HOST:PORT'));
else fail('usage: throughput-probe.ts receive --port P --seconds S [--warmup W] | send --to HOST:PORT');
