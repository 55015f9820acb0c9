/** Small helpers for tests that start real processes and ask their HTTP endpoints on loopback. */
import { request } from 'node:http';
import { createServer } from 'node:net';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request to 127.0.0.1:`port`; rejects when nothing answers within `timeoutMs`. */
export function httpGet(port: number, urlPath: string, options: { method?: string; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: urlPath, method: options.method ?? 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer on ${urlPath} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A loopback port that is free now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The parent's environment without any RINGPIPE_* setting, plus `settings`: only what a test gives counts. */
export function envWith(settings: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('RINGPIPE_')));
  return { ...env, ...settings };
}
