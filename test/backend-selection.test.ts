import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { classifyLoadError } from '../shared/engine/classify-load-error.js';
import { BackendUnavailableError, selectBackend } from '../shared/engine/select-backend.js';

const require = createRequire(import.meta.url);

// The exact text @tensorflow/tfjs-node 4.22 throws when installed with its install script skipped.
const HALF_INSTALLED_MESSAGE = (pkg: string, dir: string) =>
  `The Node.js native addon module (tfjs_binding.node) can not be found at path: ${dir}/lib/napi-v8/tfjs_binding.node. \n` +
  `Please run command 'npm rebuild ${pkg} --build-addon-from-source' to rebuild the native addon module. \n` +
  'If you have problem with building the addon module, please check https://github.com/tensorflow/tfjs/blob/master/tfjs-node/WINDOWS_TROUBLESHOOTING.md or file an issue.';

/** A fake project folder whose node_modules holds the backend packages in the states we want. */
class FakeProject {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'rp-backends-'));

  private packageDir(name: string): string {
    const dir = path.join(this.dir, 'node_modules', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '4.22.0', main: 'index.js' }));
    return dir;
  }

  halfInstalled(name: string): this {
    const dir = this.packageDir(name);
    writeFileSync(path.join(dir, 'index.js'), `throw new Error(${JSON.stringify(HALF_INSTALLED_MESSAGE(name, dir))});`);
    return this;
  }

  withoutCuda(name: string): this {
    const dir = this.packageDir(name);
    writeFileSync(path.join(dir, 'index.js'), `throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory');`);
    return this;
  }

  /** A package that loads and registers a working 'tensorflow' backend (the cpu kernels under that name). */
  working(name: string): this {
    const dir = this.packageDir(name);
    const core = require.resolve('@tensorflow/tfjs-core');
    const cpu = require.resolve('@tensorflow/tfjs-backend-cpu');
    writeFileSync(
      path.join(dir, 'index.js'),
      `const tf = require(${JSON.stringify(core)}); const { MathBackendCPU } = require(${JSON.stringify(cpu)});\n` +
        `const cpuKernels = tf.getKernelsForBackend('cpu');\n` +
        `for (const k of cpuKernels) if (!tf.getKernel(k.kernelName, 'tensorflow')) tf.registerKernel({ ...k, backendName: 'tensorflow' });\n` +
        `tf.registerBackend('tensorflow', () => new MathBackendCPU(), 3);`,
    );
    return this;
  }

  /** The real wasm package, linked in. */
  realWasm(): this {
    const target = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    mkdirSync(path.join(this.dir, 'node_modules', '@tensorflow'), { recursive: true });
    symlinkSync(target, path.join(this.dir, 'node_modules', '@tensorflow', 'tfjs-backend-wasm'));
    return this;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const projects: FakeProject[] = [];
function project(): FakeProject {
  const p = new FakeProject();
  projects.push(p);
  return p;
}

afterEach(async () => {
  if (tf.findBackend('tensorflow')) tf.removeBackend('tensorflow');
  await tf.setBackend('cpu');
});
afterAll(() => projects.forEach((p) => p.remove()));

describe('tensor backend selection', () => {
  it('falls back to wasm when neither native package is installed, saying why', async () => {
    const selection = await selectBackend({ resolveFrom: project().realWasm().dir });
    expect(selection.flag).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(selection.attempts.map((a) => a.flag)).toEqual(['node-gpu', 'node', 'wasm']);
    expect(selection.attempts[0]?.reason).toMatch(/@tensorflow\/tfjs-node-gpu is not installed/);
    expect(selection.attempts[1]?.reason).toMatch(/@tensorflow\/tfjs-node is not installed/);
    // The missing training kernel for convolutions is filled in on wasm.
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });

  it('treats a half-installed native package (addon missing) as unavailable and names the fix', async () => {
    const selection = await selectBackend({ resolveFrom: project().halfInstalled('@tensorflow/tfjs-node-gpu').halfInstalled('@tensorflow/tfjs-node').realWasm().dir });
    expect(selection.flag).toBe('wasm');
    expect(selection.attempts[0]?.reason).toMatch(/tfjs-node-gpu is installed but its native addon is missing.*npm rebuild @tensorflow\/tfjs-node-gpu/);
    expect(selection.attempts[1]?.reason).toMatch(/tfjs-node is installed but its native addon is missing/);
  });

  it('reports missing CUDA for the GPU package and uses the CPU native package when it works', async () => {
    const selection = await selectBackend({ resolveFrom: project().withoutCuda('@tensorflow/tfjs-node-gpu').working('@tensorflow/tfjs-node').realWasm().dir });
    expect(selection.flag).toBe('node');
    expect(tf.getBackend()).toBe('tensorflow');
    expect(selection.attempts[0]?.reason).toMatch(/could not load the CUDA libraries.*libcudart/);
    expect(selection.attempts[1]).toEqual({ flag: 'node', available: true });
  });

  it('falls back to the pure-JS cpu backend when wasm is missing too', async () => {
    const selection = await selectBackend({ resolveFrom: project().dir });
    expect(selection.flag).toBe('cpu');
    expect(selection.attempts.find((a) => a.flag === 'wasm')?.reason).toMatch(/tfjs-backend-wasm is not installed/);
  });

  it('fails clearly when a forced backend is unavailable instead of falling back', async () => {
    const dir = project().halfInstalled('@tensorflow/tfjs-node').realWasm().dir;
    const attempt = selectBackend({ force: 'node', resolveFrom: dir });
    await expect(attempt).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(selectBackend({ force: 'node', resolveFrom: dir })).rejects.toThrow(/--backend node was requested but is not available: .*native addon is missing/);
  });

  it('uses exactly the forced backend when it is available', async () => {
    const selection = await selectBackend({ force: 'cpu', resolveFrom: project().realWasm().dir });
    expect(selection).toMatchObject({ flag: 'cpu', forced: true });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('classifies a real MODULE_NOT_FOUND error', () => {
    const name = '@tensorflow/tfjs-node-never-published';
    let error: unknown;
    try {
      require(name);
    } catch (err) {
      error = err;
    }
    expect(classifyLoadError(name, error).kind).toBe('not-installed');
    expect(classifyLoadError(name, new Error('something else broke')).reason).toBe(`${name} failed to load: something else broke`);
  });
});
