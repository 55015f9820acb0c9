import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';

const PAGE_DIR = path.join(import.meta.dirname, '..', 'page');
const require = createRequire(import.meta.url);

export interface Asset {
  contentType: string;
  body: string;
}

/**
 * The page's files. The script is TypeScript (`page/main.ts` and what it imports, uPlot included)
 * bundled by esbuild in memory on first request; uPlot's stylesheet comes straight from
 * node_modules. Nothing is fetched from the network, by the server or by the page.
 */
export class PageAssets {
  private readonly cache = new Map<string, Promise<Asset>>();

  /** The asset for a URL path, or undefined when there is none. */
  get(urlPath: string): Promise<Asset> | undefined {
    const load = LOADERS[urlPath];
    if (!load) return undefined;
    let asset = this.cache.get(urlPath);
    if (!asset) {
      asset = load();
      this.cache.set(urlPath, asset);
      // A failed build is retried on the next request (the page may have been fixed meanwhile).
      asset.catch(() => this.cache.delete(urlPath));
    }
    return asset;
  }
}

const LOADERS: Record<string, () => Promise<Asset>> = {
  '/': async () => ({ contentType: 'text/html; charset=utf-8', body: await readFile(path.join(PAGE_DIR, 'index.html'), 'utf8') }),
  '/assets/dashboard.css': async () => ({ contentType: 'text/css; charset=utf-8', body: await readFile(path.join(PAGE_DIR, 'dashboard.css'), 'utf8') }),
  '/assets/uplot.css': async () => ({ contentType: 'text/css; charset=utf-8', body: await readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8') }),
  '/assets/dashboard.js': bundlePage,
};

async function bundlePage(): Promise<Asset> {
  const result = await build({
    entryPoints: [path.join(PAGE_DIR, 'main.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    minify: true,
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
  });
  const output = result.outputFiles[0];
  if (!output) throw new Error('esbuild produced no output for the dashboard page');
  return { contentType: 'text/javascript; charset=utf-8', body: output.text };
}
