/**
 * The CLI with hostile arguments and files: one line on stderr and exit code 1 for each, no stack
 * trace, nothing allocated beyond the limits, nothing left behind, nothing written through a link.
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outputDirectory, outputFile } from '../src/cli/output.js';
import { serializeSafetensors } from '../src/nets/safetensors.js';
import { modelFromSpec } from '../src/nets/model.js';
import { FASHION_GAP } from '../src/nets/zoo.js';
import { encodePng, writePng } from '../src/saliency/image.js';
import { getGpu } from './helpers.js';
import { MALFORMED_MODEL_JSON, writeMalformedModel } from './security-cases.js';

const run = promisify(execFile);
const cli = 'dist/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'cli-security-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const modelFile = join(dir, 'gap.safetensors');
const imageFile = join(dir, 'grey.png');

/** Runs the CLI expecting it to fail; returns its exit code and stderr. */
async function fails(args: string[]): Promise<{ code: number; stderr: string }> {
  const err = await run(process.execPath, [cli, ...args], { timeout: 60_000, maxBuffer: 1 << 22 }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  return { code: err.code, stderr: err.stderr };
}

function expectOneLine(r: { code: number; stderr: string }, message: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.stderr).not.toMatch(/unexpected error/);
}

describe.runIf(existsSync(cli))('the CLI with hostile input', () => {
  beforeAll(async () => {
    const gpu = await getGpu();
    const model = modelFromSpec(gpu, FASHION_GAP, undefined, { seed: 1 });
    writeFileSync(modelFile, await model.toSafetensors());
    model.dispose();
    writeFileSync(imageFile, encodePng({ width: 28, height: 28, data: new Uint8ClampedArray(28 * 28 * 4).fill(128) }));
  });

  it('a safetensors spec with input [3, 20000, 20000] is refused before the image is resized to it', async () => {
    const file = join(dir, 'huge-input.safetensors');
    writeFileSync(file, serializeSafetensors({}, { spec: JSON.stringify({ input: [3, 20000, 20000], layers: [{ name: 'gap', type: 'gap' }] }) }));
    const r = await fails(['explain', '--model', file, '--image', imageFile, '--out', join(dir, 'o1')]);
    expectOneLine(r, /saliency: .*huge-input\.safetensors: the model input \[3, 20000, 20000\] has 1200000000 elements, more than the limit of 268435456/);
  });

  it('the limits can be raised for the CLI through the environment', async () => {
    const err = await run(process.execPath, [cli, 'explain', '--model', modelFile, '--image', imageFile, '--method', 'vanilla', '--out', join(dir, 'o-env')], {
      env: { ...process.env, SALIENCY_MAX_IMAGE_PIXELS: '100' },
    }).catch((e) => e);
    expectOneLine(err, /grey\.png is a 28×28 PNG image \(784 pixels\), more than the limit of 100 pixels \(raise it with .*SALIENCY_MAX_IMAGE_PIXELS/);
    const bad = await run(process.execPath, [cli, 'explain', '--model', modelFile, '--image', imageFile, '--out', join(dir, 'o-env2')], {
      env: { ...process.env, SALIENCY_MAX_TENSOR_ELEMENTS: 'lots' },
    }).catch((e) => e);
    expectOneLine(bad, /SALIENCY_MAX_TENSOR_ELEMENTS must be a positive integer, got 'lots'/);
  });

  it('a model whose scores overflow gets one clear error, not "predicted class -1 (NaN%)"', async () => {
    const gpu = await getGpu();
    const spec = { name: 'overflow', input: [1, 28, 28] as [number, number, number], layers: [{ name: 'flat', type: 'flatten' as const }, { name: 'fc', type: 'linear' as const, in: 784, out: 2 }] };
    const model = modelFromSpec(gpu, spec, { fc: { weight: new Array(1568).fill(1e37), bias: [0, 0] } });
    const file = join(dir, 'overflow.safetensors');
    writeFileSync(file, await model.toSafetensors());
    model.dispose();
    const r = await fails(['explain', '--model', file, '--image', imageFile, '--method', 'vanilla', '--out', join(dir, 'o-nan')]);
    expectOneLine(r, /model overflow gave non-finite scores for this image \(class 0: Infinity\); its weights or the image are broken/);
    expect(r.stderr).not.toMatch(/NaN%/);
  });

  it('--size is bounded', async () => {
    for (const size of ['50000', '20000']) {
      const r = await fails(['explain', '--model', modelFile, '--image', imageFile, '--size', size, '--out', join(dir, 'o2')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/--size must be an integer from 1 to 2048/);
    }
    const d = await fails(['detect', '--image', imageFile, '--size', '50000', '--out', join(dir, 'o2')]);
    expect(d.stderr).toMatch(/--size must be an integer from 1 to 2048/);
  });

  it("--out '' is refused instead of writing into the current directory", async () => {
    const r = await fails(['explain', '--model', modelFile, '--image', imageFile, '--out', '']);
    expectOneLine(r, /--out must name a directory; got an empty string/);
    const s = await fails(['sample', '--out', '']);
    expect(s.stderr).toMatch(/--out must name a directory; got an empty string/);
  });

  it('a too-long --out leaves no empty directories behind', async () => {
    const root = join(dir, 'long');
    mkdirSync(root);
    const out = join(root, ...Array.from({ length: 47 }, (_, i) => `d${i}`), 'x'.repeat(300));
    const r = await fails(['explain', '--model', modelFile, '--image', imageFile, '--out', out]);
    expectOneLine(r, /--out .*: cannot write files there/);
    expect(readdirSync(root)).toEqual([]);
  });

  it('a 100 KB argument is cut in the error, not echoed in full', async () => {
    const huge = 'm'.repeat(100_000);
    for (const args of [
      ['explain', '--model', modelFile, '--image', imageFile, '--method', huge, '--out', join(dir, 'o3')],
      ['explain', '--model', huge, '--image', imageFile, '--out', join(dir, 'o3')],
      ['explain', '--model', modelFile, '--image', imageFile, '--target', huge, '--out', join(dir, 'o3')],
      ['sample', `--${huge}`],
    ]) {
      const r = await fails(args);
      expect(r.code).toBe(1);
      expect(r.stderr.length, r.stderr.slice(0, 300)).toBeLessThan(2000);
      expect(r.stderr).toMatch(/m{20}… \(100\d{3} characters\)/);
    }
  });

  it('a model file that is a symlink to /dev/zero is refused, not read forever', async () => {
    const link = join(dir, 'x.safetensors');
    symlinkSync('/dev/zero', link);
    const r = await fails(['explain', '--model', link, '--image', imageFile, '--out', join(dir, 'o4')]);
    expectOneLine(r, /x\.safetensors is not a regular file \(a character device\)/);
    const img = join(dir, 'zero.png');
    symlinkSync('/dev/zero', img);
    const r2 = await fails(['explain', '--model', modelFile, '--image', img, '--out', join(dir, 'o4')]);
    expectOneLine(r2, /zero\.png is not a regular file \(a character device\)/);
  });

  describe('malformed model.json fields: exit code 1 with one line, never a stack trace', () => {
    for (const [name, change, message] of MALFORMED_MODEL_JSON) {
      it(name, async () => {
        const file = writeMalformedModel(dir, name, change);
        const r = await fails(['explain', '--model', file, '--image', imageFile, '--method', 'vanilla', '--out', join(dir, 'o5')]);
        expectOneLine(r, message);
      });
    }
  });
});

describe('files the CLI writes are created exclusively', () => {
  it('the output-directory probe does not follow a link planted where it writes', () => {
    const out = join(dir, 'probe');
    mkdirSync(out);
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(out, `.saliency-${process.pid}.partial`));
    expect(outputDirectory('--out', out)).toBe(out);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(() => outputDirectory('--out', '')).toThrow(/--out must name a directory; got an empty string/);
    expect(() => outputFile('--out', '')).toThrow(/--out must name a file; got an empty string/);
  });

  it('outputFile does not follow a planted <file>.partial link', () => {
    const victim = join(dir, 'victim2.txt');
    writeFileSync(victim, 'precious');
    const target = join(dir, 'weights.safetensors');
    symlinkSync(victim, `${target}.partial`);
    outputFile('--out', target);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
  });

  it('writePng does not write through a planted <file>.partial link', () => {
    const victim = join(dir, 'victim3.txt');
    writeFileSync(victim, 'precious');
    const target = join(dir, 'map.png');
    symlinkSync(victim, `${target}.partial`);
    writePng(target, { width: 2, height: 2, data: new Uint8ClampedArray(16).fill(255) });
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(target).isFile()).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith('.map.png') && f.endsWith('.partial'))).toEqual([]);
  });
});
