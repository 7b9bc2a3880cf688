/**
 * The library must bundle for the browser: WGSL included, no Node-only module on that path.
 * (Running it in real Chromium is the web component's job; this checks the bundle itself.)
 */
import { describe, expect, it } from 'vitest';
import { build, type Rollup } from 'vite';
import { fileURLToPath } from 'node:url';

describe('browser bundle (vite)', () => {
  it('contains the shaders and imports nothing from Node', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const result = (await build({
      root,
      configFile: false,
      logLevel: 'silent',
      build: { write: false, minify: false, lib: { entry: 'src/index.ts', formats: ['es'], fileName: 'webgpu-saliency' } },
    })) as Rollup.RollupOutput[];
    const chunks = result.flatMap((r) => r.output).filter((o): o is Rollup.OutputChunk => o.type === 'chunk');
    // Comments are not code (protobufjs documents require() in one).
    const code = chunks.map((c) => c.code).join('\n').replace(/\/\*[\s\S]*?\*\//g, '');
    expect(code).toContain('@compute @workgroup_size'); // WGSL is inlined
    expect(code).not.toMatch(/from\s+['"]node:/);
    expect(code).not.toMatch(/require\(/);
    expect(code).not.toContain('dawn.node');
    // Dawn is loaded only through a dynamic import that bundlers leave alone, and only without navigator.gpu.
    expect(chunks.flatMap((c) => c.imports)).toEqual([]);
  });
});
