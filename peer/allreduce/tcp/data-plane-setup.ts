import { randomBytes, timingSafeEqual } from 'node:crypto';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { RingError } from '../ring-errors.js';
import { FrameReader, type FrameReaderOptions } from './frame-reader.js';

/**
 * Opening the ring's TCP data connections. The rank that will send listens on a fresh port and
 * hands the receiving rank (over their already authenticated transport link) the port and a random
 * one-time token; the receiver dials, presents the token, and the sender answers one byte to accept.
 * So the data socket is only as open as the authenticated link it was announced on: whoever did not
 * pass the link's handshake never learns the token. (Like the links, it is authenticated, not
 * encrypted.) The receiver dials because only a dialing socket can read straight into our buffers.
 */
export const DATA_TOKEN_BYTES = 32;

export interface DataOffer {
  port: number;
  /** Hex, to travel in a control message. */
  token: string;
  /** The authenticated socket of the receiving rank; rejects at `deadline`. */
  accepted(deadline: number): Promise<Socket>;
  close(): void;
}

export async function offerDataConnection(host: string): Promise<DataOffer> {
  const token = randomBytes(DATA_TOKEN_BYTES);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new RingError('link', `cannot open a data port on ${host}: ${error.message}`)));
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    token: token.toString('hex'),
    accepted: (deadline) => acceptWithToken(server, token, deadline),
    close: () => server.close(),
  };
}

function acceptWithToken(server: Server, token: Buffer, deadline: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      server.close();
      reject(new RingError('timeout', 'the next rank did not open its data connection in time'));
    }, Math.max(1, deadline - Date.now()));
    server.on('connection', (socket: Socket) => {
      let received = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        received = Buffer.concat([received, chunk]);
        if (received.length < DATA_TOKEN_BYTES) return;
        socket.off('data', onData);
        if (received.length !== DATA_TOKEN_BYTES || !timingSafeEqual(received, token)) {
          socket.destroy();
          return;
        }
        clearTimeout(timer);
        server.close();
        // From now on nothing may arrive here; reading on lets us notice the peer closing.
        socket.on('data', () => socket.destroy(new Error('unexpected bytes from the receiving rank')));
        socket.setNoDelay(true);
        socket.write(Buffer.of(1));
        resolve(socket);
      };
      socket.on('data', onData);
      socket.on('error', () => socket.destroy());
    });
  });
}

/** Dials the sending rank's data port, presents the token, and resolves once it has accepted. */
export function openDataConnection(args: {
  host: string;
  port: number;
  token: string;
  deadline: number;
  reader: Omit<FrameReaderOptions, 'peerLabel'>;
}): Promise<{ socket: Socket; reader: FrameReader }> {
  const label = `${args.host}:${args.port}`;
  const token = Buffer.from(args.token, 'hex');
  if (token.length !== DATA_TOKEN_BYTES) return Promise.reject(new RingError('link', `malformed data token from ${label}`));
  const reader = new FrameReader({ ...args.reader, peerLabel: label });
  return new Promise((resolve, reject) => {
    const socket: Socket = netConnect({ host: args.host, port: args.port, onread: reader.hooks(() => socket.resume()) });
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error instanceof RingError ? error : new RingError('link', `data connection to ${label} failed: ${error.message}`));
    };
    const timer = setTimeout(() => fail(new RingError('timeout', `data connection to ${label} was not accepted in time`)), Math.max(1, args.deadline - Date.now()));
    socket.once('error', fail);
    socket.once('close', () => fail(new RingError('link', `data connection to ${label} closed during setup`)));
    socket.once('connect', () => {
      socket.setNoDelay(true);
      socket.write(token);
    });
    reader.accepted.then(() => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.removeAllListeners('close');
      resolve({ socket, reader });
    }, fail);
  });
}
