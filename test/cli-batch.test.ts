/**
 * `saliency batch` and `saliency batch-merge`, run as separate processes the way a user (or a
 * Kubernetes pod) runs them, on a tiny untrained model and small PNGs: shards cover the input
 * exactly once; a run killed with SIGKILL at random points and resumed ends with the same files as
 * one never stopped; bad files become failed lines while the rest is explained; the .npy files hold
 * what the library's API computes; `--metric` writes what the library's metrics give.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelFromSafetensors, modelFromSpec } from '../src/nets/model.js';
import { parseSafetensors } from '../src/nets/safetensors.js';
import { FASHION_GAP } from '../src/nets/zoo.js';
import { decodeNpy } from '../src/runtime/npy.js';
import { tensor } from '../src/runtime/tensor.js';
import { decodeImage, encodePng, imageToTensorData } from '../src/saliency/image.js';
import { cropRgba } from '../src/saliency/input.js';
import * as saliency from '../src/saliency/index.js';
import { getGpu, rng } from './helpers.js';

const execFileP = promisify(execFile);
const cli = 'dist/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'batch-'));
const modelFile = join(dir, 'gap.safetensors');
const images = join(dir, 'images');

/** A 28×28 grey PNG of smooth random blobs (seeded), so that maps differ between images. */
function blobImage(seed: number): Uint8Array {
  const r = rng(seed);
  const blobs = Array.from({ length: 3 }, () => [r() * 28, r() * 28, 3 + 5 * r(), 120 + 135 * r()] as const);
  const data = new Uint8ClampedArray(28 * 28 * 4);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      let v = 0;
      for (const [bx, by, s, a] of blobs) v += a * Math.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * s * s));
      data.set([v, v, v, 255], (y * 28 + x) * 4);
    }
  }
  return encodePng({ width: 28, height: 28, data });
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function saliencyCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

function lines(file: string): Record<string, unknown>[] {
  const text = readFileSync(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every file under `root`, hidden ones included, as sorted relative paths. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

/** A results line without the times, which differ from run to run. */
function timeless(r: Record<string, unknown>): Record<string, unknown> {
  const methods = r.methods as Record<string, Record<string, unknown>> | undefined;
  if (!methods) return r;
  return { ...r, methods: Object.fromEntries(Object.entries(methods).map(([m, e]) => [m, { ...e, ms: 0 }])) };
}

const imageName = (i: number) => `img-${String(i).padStart(3, '0')}.png`;

describe.runIf(existsSync(cli))('saliency batch', () => {
  beforeAll(async () => {
    const gpu = await getGpu();
    const model = modelFromSpec(gpu, FASHION_GAP, undefined, { seed: 3 });
    writeFileSync(modelFile, await model.toSafetensors());
    model.dispose();
    mkdirSync(join(images, 'sub'), { recursive: true });
    // 60 images, 10 of them in a subfolder (ids are paths relative to the folder).
    for (let i = 0; i < 60; i++) writeFileSync(join(images, i < 50 ? '' : 'sub', imageName(i)), blobImage(1000 + i));
    writeFileSync(join(images, 'notes.txt'), 'not an image: a folder input skips it');
  });

  it('three shards, as three processes, cover the 60 images exactly once, and batch-merge agrees', async () => {
    const out = join(dir, 'shards');
    const runs = await Promise.all([0, 1, 2].map((i) => saliencyCli(['batch', '--model', modelFile, '--input', images, '--method', 'gradCam', '--out', out, '--shard', `${i}/3`, '--workers', '1'])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const ids = [0, 1, 2].flatMap((i) =>
      lines(join(out, `results-${i}.jsonl`)).map((r) => {
        // The shard of an id: SHA-256 of the id as a number, modulo 3 (computed here independently).
        const hash = BigInt(`0x${createHash('sha256').update(r.id as string).digest('hex').slice(0, 16)}`);
        expect(Number(hash % 3n)).toBe(i);
        expect(r.status).toBe('ok');
        return r.id as string;
      }),
    );
    const all = Array.from({ length: 60 }, (_, i) => (i < 50 ? imageName(i) : `sub/${imageName(i)}`));
    expect([...ids].sort()).toEqual([...all].sort());
    expect(new Set(ids).size).toBe(60);
    for (const i of [0, 1, 2]) expect(lines(join(out, `results-${i}.jsonl`)).length).toBeGreaterThan(5); // no empty shard

    const merged = await saliencyCli(['batch-merge', out, '--json']);
    expect(merged.code, merged.stderr).toBe(0);
    const report = JSON.parse(merged.stdout) as { inputs: number; ok: number; missing: string[]; duplicates: string[]; problems: string[] };
    expect(report).toMatchObject({ inputs: 60, ok: 60, missing: [], duplicates: [], problems: [] });
    expect(lines(join(out, 'results.jsonl')).map((r) => r.id)).toEqual(all); // input order

    // A shard that lost a line, or has one twice: merge says which, and writes nothing.
    const shard0 = join(out, 'results-0.jsonl');
    const text = readFileSync(shard0, 'utf8');
    const first = text.slice(0, text.indexOf('\n') + 1);
    writeFileSync(shard0, text.slice(first.length));
    const missing = await saliencyCli(['batch-merge', out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`1 input has no results line: '${(JSON.parse(first) as { id: string }).id}'`);
    writeFileSync(shard0, text + first);
    const twice = await saliencyCli(['batch-merge', out]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/1 input has more than one line/);
    writeFileSync(shard0, text);
    // A shard that never ran.
    const run2 = readFileSync(join(out, 'run-2.json'));
    writeFileSync(join(out, 'run-2.json.bak'), run2);
    const { rmSync } = await import('node:fs');
    rmSync(join(out, 'run-2.json'));
    const noShard = await saliencyCli(['batch-merge', out]);
    expect(noShard.code).toBe(1);
    expect(noShard.stderr).toContain('shard 2 of 3 never ran (no run-2.json)');
  });

  it('a run killed with SIGKILL at 5 random points, then resumed, ends with the same files byte for byte as a run never stopped', async () => {
    // Automatic batches within a small memory budget (a few images each): every run, resumed or
    // not, must choose the same ones.
    const args = (out: string) => ['batch', '--model', modelFile, '--input', images, '--method', 'gradCam,guidedBackprop', '--png', '--size', '32', '--memory-budget', '2', '--out', out, '--workers', '2'];
    const whole = join(dir, 'whole');
    const ref = await saliencyCli(args(whole));
    expect(ref.code, ref.stderr).toBe(0);

    const killed = join(dir, 'killed');
    const random = rng(20);
    const count = () => (existsSync(join(killed, 'results.jsonl')) ? readFileSync(join(killed, 'results.jsonl'), 'utf8').split('\n').length - 1 : 0);
    let kills = 0;
    for (let k = 0; k < 5; k++) {
      // Kill once the results file has reached a random number of lines, a random moment later.
      const target = Math.floor(random() * 60);
      const delay = Math.floor(random() * 40);
      const child = spawn(process.execPath, [cli, ...args(killed)], { stdio: 'ignore' });
      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
      let finished = false;
      void exited.then(() => (finished = true));
      while (!finished && count() < target) await new Promise((r) => setTimeout(r, 3));
      await new Promise((r) => setTimeout(r, delay));
      if (!finished) {
        child.kill('SIGKILL');
        kills++;
      }
      await exited;
    }
    expect(kills).toBeGreaterThanOrEqual(3); // the kills did land during runs
    // A kill in the middle of appending a line leaves it cut short: the resumed run must redo that
    // image inside the same batch as before, or its maps would differ in the last bits.
    const file = join(killed, 'results.jsonl');
    if (existsSync(file) && statSync(file).size > 0) {
      const text = readFileSync(file, 'utf8');
      const lastStart = text.lastIndexOf('\n', text.length - 2) + 1;
      truncateSync(file, lastStart + 1 + Math.floor(random() * (text.length - lastStart - 2)));
    }
    const last = await saliencyCli(args(killed));
    expect(last.code, last.stderr).toBe(0);

    expect(tree(killed)).toEqual(tree(whole)); // same names: nothing missing, no temporary or lock file left
    for (const f of tree(whole)) {
      if (f === 'results.jsonl') continue;
      expect(readFileSync(join(killed, f)).equals(readFileSync(join(whole, f))), f).toBe(true);
    }
    // The same lines in the same order, each image once; only the measured times differ.
    expect(lines(join(killed, 'results.jsonl')).map(timeless)).toEqual(lines(join(whole, 'results.jsonl')).map(timeless));
  });

  it('under a small --memory-budget: stays within it, in batches the budget chose (the same in every run); maps within 1e-6 of one batch, SmoothGrad\'s those of each image alone', async () => {
    const MiB = 2 ** 20;
    const args = (out: string, ...more: string[]) => ['batch', '--model', modelFile, '--input', join(images, 'sub'), '--method', 'gradCam,smoothGrad', '--samples', '8', '--json', '--out', join(dir, out), ...more];
    type Summary = { done: number; batchSize: number; memory: { budgetBytes: number; peakBytes: number; bytesPerImage: number; tensorsStart: number; tensorsEnd: number } };
    const summaryOf = (r: Run) => {
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Summary;
    };
    // 2 MiB: the model takes about 0.25 MiB, one image through Grad-CAM (and SmoothGrad's one sample) about 0.3 MiB.
    const [a, b, forced, one] = await Promise.all([
      saliencyCli(args('budget-a', '--memory-budget', '2')),
      saliencyCli(args('budget-b', '--memory-budget', '2')),
      saliencyCli(args('budget-forced', '--memory-budget', '2', '--batch-size', '10')),
      saliencyCli(args('budget-none', '--batch-size', '10')), // the default budget: one batch of the 10 images
    ]);
    const sa = summaryOf(a);
    expect(sa.done).toBe(10);
    expect(sa.memory.budgetBytes).toBe(2 * MiB);
    expect(sa.memory.peakBytes).toBeLessThanOrEqual(2 * MiB); // the whole run, the model's loading included
    expect(sa.batchSize).toBeGreaterThan(1);
    expect(sa.batchSize).toBeLessThan(10); // the budget decided, not the 10 images or the cap of 64
    expect(sa.memory.tensorsEnd).toBe(sa.memory.tensorsStart);
    expect(a.stderr).not.toMatch(/^saliency: /m);
    expect(a.stderr).toContain(`batches of ${sa.batchSize} (about `);
    // The same command in another process: the same batches, the same files byte for byte.
    const sb = summaryOf(b);
    expect(sb.batchSize).toBe(sa.batchSize);
    expect(sb.memory.bytesPerImage).toBe(sa.memory.bytesPerImage);
    const maps = tree(join(dir, 'budget-a', 'maps'));
    expect(maps).toHaveLength(20);
    expect(tree(join(dir, 'budget-b', 'maps'))).toEqual(maps);
    for (const f of maps) expect(readFileSync(join(dir, 'budget-b', 'maps', f)).equals(readFileSync(join(dir, 'budget-a', 'maps', f))), f).toBe(true);
    // An explicit batch of 10 cannot fit: split, with one warning.
    const sf = summaryOf(forced);
    expect(sf.batchSize).toBeLessThan(10);
    expect(sf.memory.peakBytes).toBeLessThanOrEqual(2 * MiB);
    expect(forced.stderr.split('\n').filter((l) => l.startsWith('saliency: '))).toEqual([
      expect.stringMatching(/^saliency: batch: a batch of 10 images needs about [\d.]+ MiB, more than the memory budget leaves \(2 MiB, of which .* in use\); running batches of at most \d+ instead$/),
    ]);
    // One batch without the small budget: the same maps within 1e-6.
    const so = summaryOf(one);
    expect(so.batchSize).toBe(10);
    expect(so.memory.peakBytes).toBeGreaterThan(2 * MiB);
    for (const f of maps) {
      const want = decodeNpy(new Uint8Array(readFileSync(join(dir, 'budget-none', 'maps', f)))).data;
      const scale = Math.max(...Array.from(want, Math.abs));
      expect(scale, f).toBeGreaterThan(0);
      for (const out of ['budget-a', 'budget-forced']) {
        const got = decodeNpy(new Uint8Array(readFileSync(join(dir, out, 'maps', f)))).data;
        let worst = 0;
        got.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want[i]!))));
        expect(worst, `${out} ${f}`).toBeLessThanOrEqual(1e-6 * scale);
      }
    }
    // SmoothGrad runs one image per call: an image's map is its map alone, wherever it sits in its batch.
    const gpu = await getGpu();
    const model = modelFromSafetensors(gpu, new Uint8Array(readFileSync(modelFile)));
    for (const line of lines(join(dir, 'budget-a', 'results.jsonl')).slice(0, sa.batchSize + 1)) {
      const input = imageToTensorData(decodeImage(new Uint8Array(readFileSync(line.path as string))), { channels: 1, width: 28, height: 28, background: [0, 0, 0] });
      const x = tensor(gpu, input, [1, 1, 28, 28]);
      const alone = await saliency.smoothGrad(model, x, { target: line.target as number, samples: 8 });
      const want = await alone.read();
      alone.dispose();
      x.dispose();
      const file = (line.methods as Record<string, { files: string[] }>).smoothGrad!.files[0]!;
      const got = decodeNpy(new Uint8Array(readFileSync(join(dir, 'budget-a', file)))).data;
      const scale = Math.max(...Array.from(want, Math.abs));
      got.forEach((v, i) => expect(Math.abs(v - want[i]!), line.id as string).toBeLessThanOrEqual(1e-6 * scale));
    }
    model.dispose();
    console.log(`batch within 2 MiB: batches of ${sa.batchSize} (about ${(sa.memory.bytesPerImage / 1024).toFixed(0)} KiB per image), peak ${(sa.memory.peakBytes / MiB).toFixed(2)} MiB; one batch of 10: peak ${(so.memory.peakBytes / MiB).toFixed(2)} MiB`);
  });

  it('drops a last line cut short by a kill, and redoes only what a changed --method needs', async () => {
    const out = join(dir, 'resume');
    const args = (method: string) => ['batch', '--model', modelFile, '--input', join(images, 'sub'), '--method', method, '--out', out, '--batch-size', '3'];
    expect((await saliencyCli(args('gradCam'))).code).toBe(0);
    const file = join(out, 'results.jsonl');
    const before = lines(file);
    expect(before).toHaveLength(10);
    truncateSync(file, statSync(file).size - 40); // a half-written last line
    const npy = join(out, 'maps', 'img-050.png.gradCam.npy');
    const inode = statSync(npy).ino;
    const again = await saliencyCli(args('gradCam'));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/its last line was cut short/);
    expect(again.stdout).toMatch(/done 1, skipped 9, failed 0/);
    expect(lines(file).map(timeless)).toEqual(before.map(timeless));

    const more = await saliencyCli(args('gradCam,vanilla'));
    expect(more.stdout).toMatch(/done 10, skipped 0, failed 0/);
    const after = lines(file);
    expect(after).toHaveLength(10);
    expect(statSync(npy).ino).toBe(inode); // gradCam was not computed again
    for (const r of after) expect(Object.keys(r.methods as object)).toEqual(['gradCam', 'vanilla']);
    const same = await saliencyCli(args('gradCam,vanilla'));
    expect(same.stdout).toMatch(/done 0, skipped 10, failed 0/);
    // A live run on this machine holds the lock: a second one refuses to write the same file.
    writeFileSync(`${file}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), started: 'now' }));
    const locked = await saliencyCli(args('gradCam'));
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(new RegExp(`another 'saliency batch' \\(process ${process.pid}, started now\\) is writing .*results.jsonl`));
    // A lock whose process is gone (a killed run) is taken over.
    writeFileSync(`${file}.lock`, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), started: 'then' }));
    expect((await saliencyCli(args('gradCam'))).code).toBe(0);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it('explains the good files of a manifest and lists the unreadable, oversized and non-image ones as failures', async () => {
    const m = join(dir, 'manifest');
    mkdirSync(join(m, 'a-folder'), { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(join(m, `good-${i}.png`), blobImage(i));
    writeFileSync(join(m, 'text.png'), 'hello, I am not a PNG');
    const png = Buffer.from(blobImage(7));
    writeFileSync(join(m, 'truncated.png'), png.subarray(0, png.length >> 1));
    writeFileSync(join(m, 'big.png'), Buffer.concat([png, Buffer.alloc(40_000)])); // over --max-file-size
    // A PNG whose header claims 100000×100000 pixels.
    const huge = Buffer.from(png);
    huge.writeUInt32BE(100_000, 16);
    huge.writeUInt32BE(100_000, 20);
    writeFileSync(join(m, 'huge.png'), huge);
    const manifest = [
      'path,target,crop,id',
      'good-0.png,3,,first',
      'good-1.png,,"2,2,20,20",',
      'missing.png,,,',
      'a-folder,,,',
      'text.png,,,',
      'truncated.png,,,',
      'big.png,,,',
      'huge.png,,,',
      'good-2.png,T-shirt/top,,',
      'good-0.png,,"20,20,20,20",outside',
    ].join('\n');
    writeFileSync(join(m, 'list.csv'), manifest);
    const r = await saliencyCli(['batch', '--model', modelFile, '--input', join(m, 'list.csv'), '--method', 'gradCam', '--out', join(m, 'out'), '--max-file-size', '0.02', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/done 3, skipped 0, failed 7/);
    const summary = JSON.parse(r.stdout) as { done: number; failed: number; memory: { tensorsStart: number; tensorsEnd: number; buffersStart: number; buffersEnd: number } };
    expect(summary).toMatchObject({ done: 3, failed: 7 });
    // The run, failures included, ends with the GPU tensors and buffers it started with.
    expect(summary.memory.tensorsEnd).toBe(summary.memory.tensorsStart);
    expect(summary.memory.buffersEnd).toBe(summary.memory.buffersStart);
    const byId = new Map(lines(join(m, 'out', 'results.jsonl')).map((l) => [l.id as string, l]));
    expect(byId.get('first')).toMatchObject({ status: 'ok', target: 3 });
    expect(byId.get('good-1.png')).toMatchObject({ status: 'ok' });
    expect(byId.get('good-2.png')).toMatchObject({ status: 'ok', target: 0 }); // by class name
    const errors: [string, RegExp][] = [
      ['missing.png', /no such file/],
      ['a-folder', /is not a regular file \(a directory\)/],
      ['text.png', /is not a PNG or JPEG image/],
      ['truncated.png', /corrupt or truncated PNG/],
      ['big.png', /more than the limit of 20972/],
      ['huge.png', /PNG/],
      ['outside', /reaches outside the 28×28 image/],
    ];
    for (const [id, re] of errors) {
      const line = byId.get(id)!;
      expect(line.status, id).toBe('failed');
      expect(line.error as string, id).toMatch(re);
    }
    for (const id of ['first', 'good-1.png', 'good-2.png']) {
      const entry = (byId.get(id)!.methods as Record<string, { files: string[] }>).gradCam;
      expect(existsSync(join(m, 'out', entry.files[0]!))).toBe(true);
    }
    // A bad row refuses the manifest before any work, naming its line.
    writeFileSync(join(m, 'bad.csv'), 'path,crop\ngood-0.png,"1,2,3"\ngood-1.png,\n');
    const bad = await saliencyCli(['batch', '--model', modelFile, '--input', join(m, 'bad.csv'), '--out', join(m, 'out2')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/manifest .*bad.csv has 1 bad row:\n {2}line 2: 'crop' must be x,y,width,height/);
  });

  it('writes .npy (and .safetensors) maps of shape [C, H, W] equal to what the API computes on the same batches', async () => {
    const m = join(dir, 'npy');
    mkdirSync(m, { recursive: true });
    const rows = Array.from({ length: 6 }, (_, i) => {
      writeFileSync(join(m, `x${i}.png`), blobImage(50 + i));
      return JSON.stringify({ path: `x${i}.png`, target: i % 10, id: `image ${i}` });
    });
    writeFileSync(join(m, 'list.jsonl'), `${rows.join('\n')}\n`);
    const run = (format: string) =>
      saliencyCli(['batch', '--model', modelFile, '--input', join(m, 'list.jsonl'), '--method', 'gradCam,guidedBackprop', '--batch-size', '4', '--format', format, '--out', join(m, format)]);
    expect((await run('npy')).code).toBe(0);
    expect((await run('safetensors')).code).toBe(0);

    const gpu = await getGpu();
    const model = modelFromSafetensors(gpu, new Uint8Array(readFileSync(modelFile)));
    const results = lines(join(m, 'npy', 'results.jsonl'));
    const safeResults = lines(join(m, 'safetensors', 'results.jsonl'));
    for (const [start, end] of [[0, 4], [4, 6]]) {
      // The same batches as the run: images 0–3, then 4–5.
      const inputs = Array.from({ length: end - start }, (_, k) => imageToTensorData(decodeImage(new Uint8Array(readFileSync(join(m, `x${start + k}.png`)))), { channels: 1, width: 28, height: 28, background: [0, 0, 0] }));
      const data = new Float32Array(inputs.length * 784);
      inputs.forEach((d, k) => data.set(d, k * 784));
      const x = tensor(gpu, data, [inputs.length, 1, 28, 28]);
      const targets = inputs.map((_, k) => (start + k) % 10);
      for (const method of ['gradCam', 'guidedBackprop'] as const) {
        const raw = await saliency.runMethod(method, model, x, { target: targets });
        const want = await raw.read();
        raw.dispose();
        for (let k = 0; k < inputs.length; k++) {
          const line = results[start + k]!;
          expect(line.id).toBe(`image ${start + k}`);
          const files = (line.methods as Record<string, { files: string[] }>)[method]!.files;
          const got = decodeNpy(new Uint8Array(readFileSync(join(m, 'npy', files[0]!))));
          expect(got.shape).toEqual([1, 28, 28]);
          expect(Array.from(got.data)).toEqual(Array.from(want.subarray(k * 784, (k + 1) * 784)));
          const safeFiles = (safeResults[start + k]!.methods as Record<string, { files: string[] }>)[method]!.files;
          const st = parseSafetensors(new Uint8Array(readFileSync(join(m, 'safetensors', safeFiles[0]!)))).tensors.get(method)!;
          expect(st.shape).toEqual([1, 28, 28]);
          expect(Array.from(st.data)).toEqual(Array.from(got.data));
        }
      }
      x.dispose();
    }
    model.dispose();
  });

  it('--metric: each map\'s metrics in its line, equal to the library\'s for that image alone; adding or changing metrics redoes only them; bad names are refused', async () => {
    const m = join(dir, 'metrics');
    mkdirSync(m, { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(join(m, `x${i}.png`), blobImage(70 + i));
    const rows = [
      { path: 'x0.png', id: 'two boxes', target: 3, box: [[0, 0, 6, 6], [14, 10, 28, 28]] },
      { path: 'x1.png', id: 'cropped', crop: [4, 2, 20, 24], box: '6,5,18,20' }, // the box in the image's pixels
      { path: 'x2.png', id: 'no box' },
    ];
    writeFileSync(join(m, 'list.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const out = join(m, 'out');
    const base = ['batch', '--model', modelFile, '--input', join(m, 'list.jsonl'), '--method', 'gradCam,vanilla', '--batch-size', '2', '--out', out, '--json'];
    const metricArgs = ['--metric', 'all,randomisation', '--percentages', '30,60', '--sensitivity-samples', '2', '--step', '56'];
    const summaryOf = (r: Run) => {
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { done: number; skipped: number; metrics: { names: string[]; means: Record<string, Record<string, Record<string, number>>> } | null; memory: { tensorsStart: number; tensorsEnd: number; buffersStart: number; buffersEnd: number } };
    };
    expect(summaryOf(await saliencyCli(base)).metrics).toBeNull();
    const file = join(out, 'results.jsonl');
    const inodes = () => tree(join(out, 'maps')).map((f) => statSync(join(out, 'maps', f)).ino);
    const before = inodes();

    // Adding --metric: the maps are kept (read back from their files), the metrics computed.
    const first = await saliencyCli([...base, ...metricArgs]);
    const s1 = summaryOf(first);
    expect(s1).toMatchObject({ done: 3, skipped: 0 });
    expect(s1.memory.tensorsEnd).toBe(s1.memory.tensorsStart);
    expect(s1.memory.buffersEnd).toBe(s1.memory.buffersStart);
    expect(first.stderr).toContain('pointingGame only for the 2 of 3 images with a box');
    expect(inodes()).toEqual(before);
    const got = lines(file);
    expect(got.map((l) => l.id)).toEqual(['two boxes', 'cropped', 'no box']);

    // The library's metrics of the same image alone, map (read from the .npy) and options.
    const gpu = await getGpu();
    const model = modelFromSafetensors(gpu, new Uint8Array(readFileSync(modelFile)));
    const close = (a: unknown, b: number, what: string) => expect(Math.abs((a as number) - b), `${what}: ${String(a)} vs ${b}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(b)));
    const scale = [28 / 20, 28 / 24];
    const wantBoxes: ([number, number, number, number][] | null)[] = [
      [[0, 0, 6, 6], [14, 10, 28, 28]],
      [[(6 - 4) * scale[0]!, (5 - 2) * scale[1]!, (18 - 4) * scale[0]!, (20 - 2) * scale[1]!]],
      null,
    ];
    for (const [i, line] of got.entries()) {
      const img = decodeImage(new Uint8Array(readFileSync(join(m, `x${i}.png`))));
      const crop = rows[i]!.crop as [number, number, number, number] | undefined;
      const input = imageToTensorData(crop ? cropRgba(img, crop) : img, { channels: 1, width: 28, height: 28, background: [0, 0, 0] });
      const x = tensor(gpu, input, [1, 1, 28, 28]);
      const target = [line.target as number];
      if (i === 0) expect(target).toEqual([3]);
      for (const method of ['gradCam', 'vanilla'] as const) {
        const kind = method === 'gradCam' ? 'cam' : 'attribution';
        const entry = (line.methods as Record<string, { files: string[]; metrics: Record<string, string> }>)[method]!;
        const npy = decodeNpy(new Uint8Array(readFileSync(join(out, entry.files[0]!))));
        const map = { data: npy.data, shape: [1, ...npy.shape] };
        const v = (line.metrics as Record<string, Record<string, unknown>>)[method]!;
        const names = ['deletion', 'insertion', 'road', 'averageDrop', 'maxSensitivity', 'randomisation', ...(wantBoxes[i] ? ['pointingGame'] : [])];
        expect(Object.keys(v)).toEqual(names);
        expect(Object.keys(entry.metrics)).toEqual(names);
        const what = `${line.id as string} ${method}`;
        close(v.deletion, (await saliency.metrics.deletion(model, x, map, { target, kind, step: 56 }))[0]!.auc, `${what} deletion`);
        close(v.insertion, (await saliency.metrics.insertion(model, x, map, { target, kind, step: 56 }))[0]!.auc, `${what} insertion`);
        const road = (await saliency.metrics.road(model, x, map, { target, kind, percentages: [30, 60], seed: 0 }))[0]!;
        const r = v.road as Record<string, number>;
        close(r.morf, road.morfMean, `${what} road`);
        close(r.lerf, road.lerfMean, `${what} road`);
        close(r.combined, road.combined, `${what} road`);
        const drop = (await saliency.metrics.averageDrop(model, x, map, { target, kind })).images[0]!;
        const d = v.averageDrop as Record<string, number>;
        close(d.y, drop.y, `${what} averageDrop`);
        close(d.o, drop.o, `${what} averageDrop`);
        close(d.drop, (100 * Math.max(0, drop.y - drop.o)) / drop.y, `${what} averageDrop`);
        const sens = (await saliency.metrics.maxSensitivity(model, method, x, { target, radius: 0.02, samples: 2, seed: 0 })).values[0]!;
        if (Number.isFinite(sens)) close(v.maxSensitivity, sens, `${what} maxSensitivity`);
        else expect(v.maxSensitivity).toBeNull();
        const steps = (await saliency.metrics.randomisation(model, method, x, { target, kind, order: 'cascading', seed: 0 })).steps;
        const rnd = v.randomisation as Record<string, number>;
        close(rnd.spearmanAbs, steps.at(-1)!.spearmanAbs[0]!, `${what} randomisation`);
        close(rnd.ssim, steps.at(-1)!.ssim[0]!, `${what} randomisation`);
        if (wantBoxes[i]) {
          const pg = (await saliency.metrics.pointingGame(map, [wantBoxes[i]!], { kind })).images[0]!;
          expect(v.pointingGame, what).toEqual({ hit: pg.hit, point: pg.point });
        }
      }
      x.dispose();
    }
    model.dispose();
    // The summary's means are the means of the lines.
    for (const method of ['gradCam', 'vanilla']) {
      const per = got.map((l) => (l.metrics as Record<string, Record<string, unknown>>)[method]!);
      close(s1.metrics!.means[method]!.deletion!.mean, per.reduce((a, p) => a + (p.deletion as number), 0) / 3, `${method} mean deletion`);
      const hits = per.filter((p) => p.pointingGame).map((p) => (p.pointingGame as { hit: boolean }).hit);
      expect(s1.metrics!.means[method]!.pointingGame).toEqual({ accuracy: hits.filter(Boolean).length / 2, images: 2 });
    }

    // The same command again: nothing to do.
    expect(summaryOf(await saliencyCli([...base, ...metricArgs]))).toMatchObject({ done: 0, skipped: 3 });
    // Another --step: deletion and insertion are done again, the other values are kept as they are
    // in the file (a value changed by hand stays: it was not computed again), and the maps too.
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace('"road":{"morf":', '"road":{"morf":12345,"was":'));
    const s3 = summaryOf(await saliencyCli([...base, ...metricArgs.slice(0, -1), '28']));
    expect(s3).toMatchObject({ done: 3, skipped: 0 });
    const again = lines(file);
    expect(((again[0]!.metrics as Record<string, Record<string, Record<string, number>>>).gradCam!.road!).morf).toBe(12345);
    for (const [i, line] of again.entries()) {
      for (const method of ['gradCam', 'vanilla']) {
        const keys = (line.methods as Record<string, { metrics: Record<string, string> }>)[method]!.metrics;
        const old = (got[i]!.methods as Record<string, { metrics: Record<string, string> }>)[method]!.metrics;
        for (const k of Object.keys(old)) expect(keys[k] === old[k], `${k} hash`).toBe(k !== 'deletion' && k !== 'insertion');
      }
    }
    expect(inodes()).toEqual(before);
    // Without --metric the lines lose their metrics; the maps stay.
    expect(summaryOf(await saliencyCli(base))).toMatchObject({ done: 3, skipped: 0 });
    for (const line of lines(file)) expect(line.metrics).toBeUndefined();
    expect(inodes()).toEqual(before);

    // Bad names, and a pointing game with no box: one line, before any work.
    const bad = await saliencyCli([...base, '--metric', 'deletion,speed']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^saliency: unknown metric 'speed'; choose from deletion, insertion, road, averageDrop, maxSensitivity, randomisation, pointingGame, or all$/m);
    const noBox = await saliencyCli(['batch', '--model', modelFile, '--input', join(images, 'sub'), '--metric', 'pointingGame', '--out', join(m, 'nobox')]);
    expect(noBox.code).toBe(1);
    expect(noBox.stderr).toMatch(/^saliency: pointingGame needs each image's object box: a 'box' column in the manifest/m);
    writeFileSync(join(m, 'bad.csv'), 'path,box\nx0.png,"5,5,2,8"\n');
    const badBox = await saliencyCli(['batch', '--model', modelFile, '--input', join(m, 'bad.csv'), '--metric', 'pointingGame', '--out', join(m, 'badbox')]);
    expect(badBox.code).toBe(1);
    expect(badBox.stderr).toMatch(/bad.csv has 1 bad row:\n {2}line 2: 'box' must be x1,y1,x2,y2 in pixels of the image, with x2 > x1 and y2 > y1/);
  });
});
