/**
 * The demo server (`npm run web`): it serves only what the page needs, answers a malformed URL
 * with 400 rather than a stack trace, and warns when it listens beyond loopback. Plain HTTP
 * requests, no browser.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopback, startWebServer, type WebServer } from '../scripts/web.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let server: WebServer;
let base: string;

beforeAll(async () => {
  server = await startWebServer({ port: 0, strictPort: true, logLevel: 'silent' });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => server?.close());

const get = async (path: string) => {
  const res = await fetch(base + path, { redirect: 'manual' });
  return { status: res.status, body: await res.text() };
};

describe('the demo server', () => {
  it('answers a malformed percent-encoding with 400 and no stack trace or path', async () => {
    for (const path of ['/human-models/%', '/human-models/%E0%A4%A', '/models/%zz.safetensors']) {
      const r = await get(path);
      expect(r.status, path).toBe(400);
      expect(r.body).not.toContain(ROOT);
      expect(r.body).not.toMatch(/\n\s+at /);
    }
  });

  it('serves the page, the library it imports, the models and the samples', async () => {
    for (const path of ['/web/', '/web/main.ts', '/src/web/index.ts', '/src/runtime/gpu.ts', '/models/index.json', '/samples/index.json', '/@vite/client', '/node_modules/wgsl-preprocessor/wgsl-preprocessor.js']) {
      expect((await get(path)).status, path).toBe(200);
    }
    if (existsSync(`${ROOT}models/fashion-gap.safetensors`)) expect((await get('/models/fashion-gap.safetensors')).status).toBe(200);
    expect((await get('/')).status).toBe(302);
  });

  it('serves nothing else of the repository: sources of the CLI, tests, scripts, package files, node_modules, .git', async () => {
    for (const path of [
      '/package.json',
      '/package-lock.json',
      '/README.md',
      '/src/cli/main.ts',
      '/src/bench/main.ts',
      '/scripts/web.mjs',
      '/test/helpers.ts',
      '/tsconfig.json',
      '/node_modules/commander/package.json',
      '/node_modules/.package-lock.json',
      '/.git/config',
      `/@fs${ROOT}package.json`,
      '/@fs/etc/passwd',
      '/models/checkpoints/',
      '/web/../package.json',
      '/src/../package.json',
      '/%2e%2e/package.json',
    ]) {
      const r = await get(path);
      expect(r.status, path).toBe(404);
      expect(r.body).not.toContain('"name": "webgpu-saliency"');
    }
  });

  it('tells loopback addresses from the others', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '192.168.1.5', 'example.org']) expect(isLoopback(host), host).toBe(false);
  });

  it('warns when it listens beyond loopback', async () => {
    const child = spawn(process.execPath, ['scripts/web.mjs', '--host', '0.0.0.0', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no start line: ${out}`)), 60_000);
        const poll = setInterval(() => {
          if (/webgpu-saliency demo: /.test(out)) {
            clearTimeout(timer);
            clearInterval(poll);
            resolve();
          }
        }, 100);
      });
    } finally {
      child.kill();
    }
    expect(out).toMatch(/warning: listening on 0\.0\.0\.0, beyond this machine: anyone who can reach it can use the demo/);
  });
});
