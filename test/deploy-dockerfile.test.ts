/**
 * The Dockerfile, checked without Docker (no engine runs on this machine, so the image itself is
 * not built here): Docker-language-server diagnostics, the structure of every stage, that the build
 * context (.dockerignore) and the COPY lines carry every file the entry points load, that no
 * dev-only package is needed at run time (the image installs with --omit=dev), and finally the
 * image's file layout assembled in a folder and started for real through the image's entry point.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { validate } from 'dockerfile-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDockerfile, withArgs, type Stage } from './deploy-support/dockerfile-stages.js';
import { envWith, freePort, httpGet, portIsFree } from './deploy-support/local-http.js';

const ROOT = path.join(import.meta.dirname, '..');
const DOCKERFILE = path.join(ROOT, 'Dockerfile');
const { args, stages } = readDockerfile(DOCKERFILE);
const ENTRY_POINTS = ['scripts/coordinator.ts', 'scripts/peer.ts'];
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; optionalDependencies?: Record<string, string>; engines: { node: string } };
// A CommonJS module whose typings describe an ES default export: load it as what it is.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as (typeof import('@balena/dockerignore'))['default'];
const ignore = dockerignore().add(readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n'));

function stage(name: string): Stage {
  const found = stages.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no stage ${name} in the Dockerfile`);
  return found;
}

/** COPY lines that read the build context (no --from), as [sources, destination]. */
function contextCopies(): { sources: string[]; destination: string }[] {
  return stages.flatMap((candidate) =>
    candidate.instructions
      .filter((instruction) => instruction.keyword === 'COPY' && instruction.flags.from === undefined)
      .map((instruction) => {
        const parts = instruction.text.split(/\s+/);
        return { sources: parts.slice(0, -1), destination: parts.at(-1)! };
      }),
  );
}

/** Every file under `relative` (a file or folder of the repository) that the build context keeps. */
function contextFiles(relative: string): string[] {
  const full = path.join(ROOT, relative);
  if (!statSync(full).isDirectory()) return ignore.ignores(relative) ? [] : [relative];
  return readdirSync(full).flatMap((entry) => contextFiles(path.posix.join(relative, entry)));
}

/** The files the entry points import (statically), and the packages they import. */
async function importClosure(): Promise<{ files: string[]; packages: string[] }> {
  const result = await build({ entryPoints: ENTRY_POINTS.map((entry) => path.join(ROOT, entry)), absWorkingDir: ROOT, bundle: true, write: false, metafile: true, platform: 'node', format: 'esm', packages: 'external', outdir: path.join(os.tmpdir(), 'rp-closure'), logLevel: 'silent' });
  const files = Object.keys(result.metafile.inputs);
  const external = Object.values(result.metafile.outputs).flatMap((output) => output.imports.filter((entry) => entry.external).map((entry) => entry.path));
  const packages = [...new Set(external.filter((specifier) => !specifier.startsWith('node:') && !builtinModules.includes(specifier)).map((specifier) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/')))];
  return { files, packages };
}

describe('Dockerfile (static: the image is not built here)', () => {
  it('has no diagnostics from the Docker language server validator (which does flag a broken file)', () => {
    const text = readFileSync(DOCKERFILE, 'utf8');
    expect(validate(text)).toEqual([]);
    const broken = text.replace('ENTRYPOINT ["/usr/bin/tini"', 'ENTRYPIONT ["/usr/bin/tini"').replace('AS native-cpu', 'AS native-cpu extra');
    expect(validate(broken).length).toBeGreaterThanOrEqual(2);
  });

  it('builds dependencies, the native packages, the app, then a GPU and a CPU image; CPU is the default (last) target', () => {
    expect(stages.map((candidate) => candidate.name)).toEqual(['deps', 'native-cpu', 'native-gpu', 'app', 'node-runtime', 'gpu', 'cpu']);
    expect(stages.at(-1)!.name).toBe('cpu');
    expect(withArgs(stage('cpu').from, args)).toBe('node-runtime');
    expect(withArgs(stage('node-runtime').from, args)).toMatch(/^node:20\.\d+\.\d+-bookworm-slim$/);
    expect(withArgs(stage('gpu').from, args)).toMatch(/^nvidia\/cuda:11\.\d+\.\d+-cudnn8-runtime-ubuntu\d\d\.\d\d$/);
    // The Node major the image runs is the one package.json's engines ask for.
    expect(pkg.engines.node).toBe(`>=${args.NODE_VERSION!.split('.')[0]}`);
  });

  it('pins every base image to a tag (none is "latest")', () => {
    const internal = new Set(stages.map((candidate) => candidate.name));
    for (const candidate of stages) {
      const image = withArgs(candidate.from, args);
      if (internal.has(image) || image === 'scratch') continue;
      expect(image, candidate.name).toMatch(/^[\w./-]+:[\w.-]+$/);
      expect(image).not.toMatch(/:latest$/);
    }
  });

  it('installs production dependencies only, and each image keeps its own native TensorFlow package or falls back to wasm', () => {
    const deps = stage('deps').instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.text).join('\n');
    expect(deps).toMatch(/npm ci --omit=dev --ignore-scripts/);
    const cpu = stage('native-cpu').instructions.map((instruction) => instruction.text).join('\n');
    expect(cpu).toMatch(/rm -rf node_modules\/@tensorflow\/tfjs-node-gpu/);
    expect(cpu).toMatch(/npm rebuild @tensorflow\/tfjs-node &&[\s\S]*\|\|[\s\S]*rm -rf node_modules\/@tensorflow\/tfjs-node;/);
    const gpu = stage('native-gpu').instructions.map((instruction) => instruction.text).join('\n');
    expect(gpu).toMatch(/rm -rf node_modules\/@tensorflow\/tfjs-node \\?/);
    expect(gpu).toMatch(/npm rebuild @tensorflow\/tfjs-node-gpu &&[\s\S]*\|\|[\s\S]*rm -rf node_modules\/@tensorflow\/tfjs-node-gpu;/);
    expect(stage('gpu').instructions.find((instruction) => instruction.flags.from === 'native-gpu')).toBeDefined();
    expect(stage('cpu').instructions.find((instruction) => instruction.flags.from === 'native-cpu')).toBeDefined();
  });

  it.each(['cpu', 'gpu'])('the %s image runs as user 1000 (numeric, not root) through tini and the entry point, with a health check on /healthz', (name) => {
    const { instructions } = stage(name);
    const users = instructions.filter((instruction) => instruction.keyword === 'USER');
    expect(users.at(-1)?.text).toBe('1000:1000');
    expect(instructions.find((instruction) => instruction.keyword === 'ENTRYPOINT')?.exec).toEqual(['/usr/bin/tini', '--', '/app/deploy/docker/entrypoint.sh']);
    expect(instructions.find((instruction) => instruction.keyword === 'CMD')?.exec).toEqual(['peer']);
    expect(instructions.some((instruction) => instruction.keyword === 'RUN' && /apt-get install -y --no-install-recommends tini/.test(instruction.text))).toBe(true);
    expect(instructions.find((instruction) => instruction.keyword === 'HEALTHCHECK')?.text).toMatch(/CMD \["node", "\/app\/deploy\/docker\/healthcheck\.mjs"\]$/);
    expect(instructions.find((instruction) => instruction.keyword === 'EXPOSE')?.text).toBe('7070 7080 8080');
    // The run folder exists and belongs to the user (a Kubernetes volume is mounted over it).
    expect(instructions.some((instruction) => instruction.keyword === 'RUN' && /mkdir \/app\/runs && chown 1000:1000 \/app\/runs/.test(instruction.text))).toBe(true);
  });

  it('the build context keeps what the COPY lines need and leaves out the rest', () => {
    for (const { sources } of contextCopies()) {
      for (const source of sources) {
        expect(existsSync(path.join(ROOT, source)), `${source} exists`).toBe(true);
        expect(contextFiles(source).length, `${source} is in the build context`).toBeGreaterThan(0);
      }
    }
    for (const left of ['node_modules/ws/package.json', 'runs/x/checkpoints/step-1/manifest.json', '.git/HEAD', 'test/cluster.test.ts', 'README.md', 'shared/x/node_modules/y.js', 'peer/debug.log']) {
      expect(ignore.ignores(left), left).toBe(true);
    }
  });

  it('every file the entry points import is copied into the image, and every package they import is a production dependency', async () => {
    const { files, packages } = await importClosure();
    expect(files.length).toBeGreaterThan(50);
    const copied = new Set(contextCopies().flatMap(({ sources }) => sources.flatMap((source) => contextFiles(source))));
    expect(files.filter((file) => !copied.has(file))).toEqual([]);
    // Worker entry files are loaded by URL, not imported: they must be copied too.
    for (const file of files) {
      for (const [, target] of readFileSync(path.join(ROOT, file), 'utf8').matchAll(/new URL\('(\.{1,2}\/[^']+)', import\.meta\.url\)/g)) {
        expect(copied.has(path.posix.join(path.posix.dirname(file), target!)), `${target} (from ${file})`).toBe(true);
      }
    }
    const production = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {})]);
    expect(packages.filter((name) => !production.has(name))).toEqual([]);
  });
});

describe('the image layout, assembled from the COPY lines and started through the entry point', () => {
  const app = mkdtempSync(path.join(os.tmpdir(), 'rp-image-'));
  const started: ChildProcess[] = [];
  afterAll(() => {
    for (const child of started) {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
    rmSync(app, { recursive: true, force: true });
  });

  beforeAll(() => {
    // What the `app` stage copies from the build context, where it puts it (under /app → `app`).
    for (const { sources, destination } of contextCopies()) {
      if (!destination.startsWith('/app/')) continue;
      for (const source of sources) {
        for (const file of contextFiles(source)) {
          const target = destination.endsWith('/') ? path.join(app, destination.slice('/app/'.length), path.relative(source, file) || path.basename(file)) : path.join(app, destination.slice('/app/'.length), path.relative(source, file));
          mkdirSync(path.dirname(target), { recursive: true });
          cpSync(path.join(ROOT, file), target);
        }
      }
    }
    // node_modules comes from the native-* stage: the repository's installed one stands in for it.
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'));
  });
  const entry = path.join(app, 'deploy', 'docker', 'entrypoint.sh');

  it('the entry point runs either command and refuses anything else', () => {
    for (const role of ['coordinator', 'peer']) {
      const run = spawnSync(entry, [role, '--help'], { encoding: 'utf8', timeout: 60_000, cwd: os.tmpdir() });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: npm run ${role} -- `));
    }
    for (const argv of [[], ['trainer']]) {
      const run = spawnSync(entry, argv, { encoding: 'utf8', timeout: 10_000 });
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/^usage: ringpipe coordinator\|peer \[flags\]/);
    }
  });

  /** Starts a role through the layout's entry point; resolves the first match of each pattern on stdout. */
  function startFromImage(role: string, settings: Record<string, string>) {
    const child = spawn(entry, [role], { env: envWith({ RINGPIPE_MDNS: '0', RINGPIPE_LOG_FORMAT: 'json', ...settings }), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    started.push(child);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
    const line = (pattern: RegExp, timeoutMs = 60_000) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const deadline = Date.now() + timeoutMs;
        const poll = setInterval(() => {
          const match = pattern.exec(stdout);
          const failed = child.exitCode !== null ? `${role} exited (${child.exitCode})` : Date.now() > deadline ? `${role} printed no ${pattern} in ${timeoutMs} ms` : undefined;
          if (match || failed) clearInterval(poll);
          if (match) resolve(match);
          else if (failed) reject(new Error(`${failed}; stderr: ${stderr}`));
        }, 50);
      });
    return { child, exited, line };
  }

  function healthcheck(settings: Record<string, string>): number | null {
    return spawnSync(process.execPath, [path.join(app, 'deploy', 'docker', 'healthcheck.mjs')], { env: envWith(settings), timeout: 20_000 }).status;
  }

  it('a coordinator and a peer started from that layout, configured as the manifests do, answer their probes and the image HEALTHCHECK', async () => {
    const [dashboardPort, closed] = [await freePort(), await freePort()];
    // The coordinator: probes on the dashboard port (loopback here; 0.0.0.0 in a pod).
    const coordinator = startFromImage('coordinator', { RINGPIPE_PORT: '0', RINGPIPE_HOST: '127.0.0.1', RINGPIPE_DASHBOARD_HOST: '127.0.0.1', RINGPIPE_DASHBOARD_PORT: String(dashboardPort), RINGPIPE_RUN_DIR: path.join(app, 'runs', 'probe') });
    const [, controlPort] = await coordinator.line(/^coordinator listening on 127\.0\.0\.1:(\d+) /m);
    await coordinator.line(new RegExp(`^dashboard http://127\\.0\\.0\\.1:${dashboardPort}/`, 'm'));
    const readiness = await httpGet(dashboardPort, '/readyz');
    expect(readiness.status, readiness.body).toBe(200);
    expect(JSON.parse(readiness.body).reason).toMatch(/^accepting peers on 127\.0\.0\.1:\d+ \(waiting-for-peers/);
    expect(healthcheck({ RINGPIPE_HEALTH_PORT: String(closed), RINGPIPE_DASHBOARD_PORT: String(dashboardPort) })).toBe(0);
    expect(healthcheck({ RINGPIPE_HEALTH_PORT: String(closed), RINGPIPE_DASHBOARD_PORT: String(closed) })).toBe(1);

    // A peer, with the entry point's default health port (8080) when it is free on this machine.
    const defaultFree = await portIsFree(8080);
    const peer = startFromImage('peer', { RINGPIPE_COORDINATOR: `127.0.0.1:${controlPort}`, RINGPIPE_HEALTH_HOST: '127.0.0.1', ...(defaultFree ? {} : { RINGPIPE_HEALTH_PORT: '0' }) });
    const [, peerHealth] = await peer.line(/^health endpoints on http:\/\/127\.0\.0\.1:(\d+)\//m);
    if (defaultFree) {
      expect(peerHealth).toBe('8080');
      expect(healthcheck({ RINGPIPE_DASHBOARD_PORT: String(closed) })).toBe(0);
    } else {
      console.warn('port 8080 is taken on this machine: the peer default of the entry point was not checked');
    }
    expect((await httpGet(Number(peerHealth), '/healthz')).status).toBe(200);

    // exec in the entry point: SIGTERM reaches node itself, which stops cleanly (130 = stopped by a signal, as documented).
    process.kill(peer.child.pid!, 'SIGTERM');
    process.kill(coordinator.child.pid!, 'SIGTERM');
    expect(await coordinator.exited).toBe(130);
    expect(await peer.exited).toBe(1);
  });
});
