/** `saliency explain` and `saliency features`, run as a user runs them, on real PNG files. */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelFromSafetensors, modelFromSpec } from '../src/nets/model.js';
import { FASHION_GAP, FASHION_VGG } from '../src/nets/zoo.js';
import { decodeImage, encodePng, imageToTensorData, readImage } from '../src/saliency/image.js';
import { inputToRgba } from '../src/saliency/input.js';
import { renderOverlay } from '../src/saliency/render.js';
import { decodeNpy } from '../src/runtime/npy.js';
import { FIGURE_GAP, describePrediction } from '../src/cli/explain.js';
import { negatedOutput } from '../src/saliency/sigmoid.js';
import { colormap, type RgbaImage } from '../src/saliency/colormaps.js';
import type { ModelSpec } from '../src/nets/spec.js';
import * as saliency from '../src/saliency/index.js';
import { tensor } from '../src/runtime/tensor.js';
import { loadFashionMnist } from '../src/nets/idx.js';
import { getGpu } from './helpers.js';

const run = promisify(execFile);

function crop(img: RgbaImage, x0: number, y0: number, w: number, h: number): RgbaImage {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(4 * ((y0 + y) * img.width + x0), 4 * ((y0 + y) * img.width + x0 + w)), 4 * y * w);
  return { width: w, height: h, data };
}

/** The first row, from the bottom up, whose pixel at the left margin is not the white background: the colour key. */
function findKeyRow(img: RgbaImage): number {
  for (let y = img.height - 1; y >= 0; y--) {
    const p = 4 * (y * img.width + FIGURE_GAP);
    if (img.data[p] !== 255 || img.data[p + 1] !== 255 || img.data[p + 2] !== 255) {
      // Skip the 'low' label's dots: the bar is the lowest run of rows that are coloured all along.
      const q = 4 * (y * img.width + FIGURE_GAP + 32);
      if (img.data[q] !== 255 || img.data[q + 1] !== 255 || img.data[q + 2] !== 255) return y;
    }
  }
  return -1;
}
const cli = 'dist/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'explain-'));
const modelFile = join(dir, 'gap.safetensors');
const imageFile = join(dir, 'boot.png');

describe.runIf(existsSync(cli))('saliency explain / features', () => {
  beforeAll(async () => {
    // An untrained fashion-gap (seeded weights) stands in for the bundled weights here.
    const gpu = await getGpu();
    const model = modelFromSpec(gpu, FASHION_GAP, undefined, { seed: 2 });
    writeFileSync(modelFile, await model.toSafetensors());
    model.dispose();
    const test = loadFashionMnist('test', undefined, { limit: 1 }); // an ankle boot
    const data = new Uint8ClampedArray(784 * 4);
    for (let p = 0; p < 784; p++) data.set([test.images[p]! * 255, test.images[p]! * 255, test.images[p]! * 255, 255], p * 4);
    writeFileSync(imageFile, encodePng({ width: 28, height: 28, data }));
  });

  it('writes one PNG per method and an overview, reporting times and the predicted class', async () => {
    const out = join(dir, 'out');
    const { stdout } = await run(process.execPath, [cli, 'explain', '--model', modelFile, '--image', imageFile, '--method', 'all', '--samples', '4', '--out', out, '--size', '64', '--target', '9']);
    expect(stdout).toMatch(/model fashion-gap: predicted .+ \(\d+\.\d%\); explaining Ankle boot/);
    for (const m of ['vanilla', 'deconvnet', 'guidedBackprop', 'gradTimesInput', 'smoothGrad', 'cam', 'gradCam', 'guidedGradCam']) {
      expect(stdout).toMatch(new RegExp(`${m}\\s+\\d+ ms\\s+→ .*${m}\\.png`));
      // The overlay with its label under it and the colour map's key under that.
      const img = decodeImage(new Uint8Array(readFileSync(join(out, `${m}.png`))));
      expect(img.width).toBe(64 + 2 * FIGURE_GAP);
      expect(img.height).toBeGreaterThan(64 + 2 * FIGURE_GAP + 7 + 6);
      // Not blank: the heat map varies across the image.
      const reds = new Set<number>();
      const overlay = crop(img, FIGURE_GAP, FIGURE_GAP, 64, 64);
      for (let i = 0; i < overlay.data.length; i += 4) reds.add(overlay.data[i]!);
      expect(reds.size).toBeGreaterThan(10);
      // The key: viridis from dark (left) to yellow (right) in a row below the label.
      const keyRow = findKeyRow(img);
      expect(keyRow, m).toBeGreaterThan(64 + FIGURE_GAP);
      const at = (x: number) => Array.from(img.data.subarray(4 * (keyRow * img.width + x), 4 * (keyRow * img.width + x) + 3));
      expect(at(FIGURE_GAP)).toEqual(colormap('viridis', 0).map((v) => Math.round(v)));
      expect(at(FIGURE_GAP + 63)).toEqual(colormap('viridis', 1).map((v) => Math.round(v)));
    }
    expect(stdout).toMatch(/smoothGrad: 4\/4 samples/);
    // The PNGs show the methods' maps: the same map, made in this process with the library and
    // drawn by its display steps, gives the same picture (to rounding).
    const gpu = await getGpu();
    const model = modelFromSafetensors(gpu, new Uint8Array(readFileSync(modelFile)));
    const input = imageToTensorData(readImage(imageFile), { channels: 1, width: 28, height: 28, background: [0, 0, 0] });
    const x = tensor(gpu, input, [1, 1, 28, 28]);
    for (const [method, kind] of [['vanilla', 'attribution'], ['gradCam', 'cam']] as const) {
      const raw = await saliency.runMethod(method, model, x, { target: 9 });
      const want = renderOverlay({ data: await raw.read(), shape: [...raw.shape] }, inputToRgba(input, 1, 28, 28), { size: 64, kind });
      raw.dispose();
      const got = crop(decodeImage(new Uint8Array(readFileSync(join(out, `${method}.png`)))), FIGURE_GAP, FIGURE_GAP, 64, 64);
      let worst = 0;
      for (let i = 0; i < got.data.length; i++) worst = Math.max(worst, Math.abs(got.data[i]! - want.data[i]!));
      expect(worst, method).toBeLessThanOrEqual(1);
    }
    x.dispose();
    model.dispose();
    const overview = decodeImage(new Uint8Array(readFileSync(join(out, 'overview.png'))));
    expect(overview.width).toBeGreaterThan(5 * 64);
    expect(overview.height).toBeGreaterThan(2 * 64);
  });

  it('--trace prints each pass step by step, the ReLU rules side by side, and writes trace.json', async () => {
    const out = join(dir, 'traced');
    const { stdout } = await run(process.execPath, [cli, 'explain', '--model', modelFile, '--image', imageFile, '--method', 'vanilla,guidedBackprop', '--target', '9', '--out', out, '--size', '16', '--trace']);
    expect(stdout).toMatch(/vanilla, forward:\n#\s+op\s+layer/);
    expect(stdout).toMatch(/conv2d\s+conv1\+relu1\s+\[1, 1, 28, 28\]/);
    expect(stdout).toMatch(/vanilla, backward \(ordinary rule\):/);
    expect(stdout).toMatch(/conv2d\s+conv5\+relu5\s+relu ordinary \(fused\)\s+\[1, 128, 7, 7\]\s+activation_backward\.relu_ordinary\[/);
    expect(stdout).toMatch(/maxpool2d\s+pool2\s+switches/);
    expect(stdout).toContain("(guidedBackprop's forward pass: as printed above)");
    expect(stdout).toMatch(/guidedBackprop, backward \(guided rule\):/);
    expect(stdout).toMatch(/layer\s+activation\s+vanilla \(ordinary\)\s+guidedBackprop \(guided\)/);
    expect(stdout).toMatch(/trace → .*trace\.json/);
    const json = JSON.parse(readFileSync(join(out, 'trace.json'), 'utf8'));
    expect(json.target).toBe(9);
    expect(json.methods.map((m: { method: string }) => m.method)).toEqual(['vanilla', 'guidedBackprop']);
    const labels = json.methods[1].passes.map((p: { label: string }) => p.label);
    expect(labels).toEqual(['forward', 'backward (guided rule)']);
    // At the topmost ReLU (relu5) the same gradient arrives in both passes, so the guided rule,
    // which keeps a subset of what the ordinary rule keeps, leaves at least as many zeros.
    type Entry = { layer: string; rules: { kind: string; rule: string; after: { zeros: number } }[]; incoming: { zeros: number } };
    const relu5 = (m: number) => (json.methods[m].passes[1].entries as Entry[]).find((e) => e.layer === 'relu5')!;
    expect(relu5(0).incoming).toEqual(relu5(1).incoming);
    expect(relu5(1).rules[0]!.rule).toBe('guided');
    expect(relu5(1).rules[0]!.after.zeros).toBeGreaterThanOrEqual(relu5(0).rules[0]!.after.zeros);
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    expect(stdout).toMatch(new RegExp(`conv5\\+relu5\\s+relu \\(fused\\)\\s+${pct(relu5(0).incoming.zeros)} → ${pct(relu5(0).rules[0]!.after.zeros)}\\s+${pct(relu5(1).incoming.zeros)} → ${pct(relu5(1).rules[0]!.after.zeros)}`));
  });

  it('draws the DeconvNet feature grid of a layer', async () => {
    const out = join(dir, 'features');
    const { stdout } = await run(process.execPath, [cli, 'features', '--model', modelFile, '--image', imageFile, '--layer', 'relu3', '--top', '4', '--out', out, '--size', '48']);
    expect(stdout).toMatch(/relu3: the 4 most active of 32 feature maps, projected to pixels → .*features-relu3\.png/);
    const grid = decodeImage(new Uint8Array(readFileSync(join(out, 'features-relu3.png'))));
    expect(grid.width).toBeGreaterThan(2 * 48);
  });

  it('reports bad input in one line, with a non-zero exit', async () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not an image');
    for (const [args, message] of [
      [['--image', join(dir, 'missing.png')], /missing\.png: no such file/],
      [['--image', text], /notes\.txt is not a PNG or JPEG image/],
      [['--image', imageFile, '--method', 'lime'], /unknown method 'lime'; methods: vanilla/],
      [['--image', imageFile, '--method', 'vanilla,drise'], /--method drise explains object detectors: use 'saliency drise'/],
      [['--image', imageFile, '--target', '12'], /--target 12 is out of range; the model has 10 classes/],
      [['--image', imageFile, '--method', 'gradCam', '--layer', 'conv9'], /no layer 'conv9'; layers: conv1/],
      // Checked before any method runs (with all methods, the first five used to be written first),
      // and also where no method uses it.
      [['--image', imageFile, '--samples', '2', '--layer', 'conv9'], /no layer 'conv9'; layers: conv1/],
      [['--image', imageFile, '--method', 'vanilla', '--layer', 'conv9'], /no layer 'conv9'; layers: conv1/],
      [['--image', imageFile, '--method', 'vanilla,guidedGradCam', '--layer', 'fc'], /guidedGradCam: layer 'fc' has output shape \[10\] per image/],
      // Blank is not 0.
      [['--image', imageFile, '--target', ''], /--target must be a class index or 'top', got ''/],
      [['--image', imageFile, '--seed', ' '], /--seed must be an integer ≥ 0/],
      [['--image', imageFile, '--crop', '1,,20,20'], /--crop must be x,y,width,height in whole pixels/],
      // The user's option, not the library function that found it.
      [['--image', imageFile, '--crop', '10,10,20,20'], /^saliency: --crop 10,10,20,20 reaches outside the image, which is 28×28 pixels\n$/],
      [['--image', ''], /^saliency: --image must name a PNG or JPEG file\n$/],
      [['--image', imageFile, '--size', '100000'], /--size must be an integer from 1 to 2048/],
      // Plain decimals only: no hexadecimal, no Infinity, nothing beyond 2^53.
      [['--image', imageFile, '--samples', '0x10'], /--samples must be a positive integer/],
      [['--image', imageFile, '--noise-level', 'Infinity'], /--noise-level must be a number ≥ 0/],
      [['--image', imageFile, '--seed', '1e20'], /--seed must be an integer ≥ 0/],
      [['--image', imageFile, '--target', '0x3'], /--target must be a class index or 'top', got '0x3'/],
    ] as const) {
      const err = await run(process.execPath, [cli, 'explain', '--model', modelFile, ...args, '--out', join(dir, 'x')]).catch((e) => e);
      expect(err.code).toBe(1);
      expect(err.stderr).toMatch(message);
      expect(err.stderr).not.toMatch(/at .*\.js:\d+/);
    }
    expect(existsSync(join(dir, 'x'))).toBe(false); // nothing written for a run that failed
  });

  it('Ctrl-C stops a run between steps: exit status 130, one line, no .partial file left beside the outputs', { timeout: 120_000 }, async () => {
    const out = join(dir, 'interrupted');
    // vanilla is written first; the long SmoothGrad after it is where Ctrl-C lands.
    const child = spawn(process.execPath, [cli, 'explain', '--model', modelFile, '--image', imageFile, '--method', 'vanilla,smoothGrad', '--samples', '20000', '--out', out]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (/vanilla/.test(stdout) && !child.killed) child.kill('SIGINT'); // the parent passes it on to the child doing the work
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    // Said by the process doing the work, from its handler: killed outright it would say nothing.
    expect(stderr).toBe('saliency: interrupted (SIGINT)\n');
    expect(readdirSync(out).filter((f) => f.endsWith('.partial'))).toEqual([]);
    expect(readdirSync(out)).toContain('vanilla.png');
    expect(readdirSync(out)).not.toContain('overview.png');
  });

  it('CAM on a model without a GAP head: refused before any method runs, or skipped first with --method all', async () => {
    const gpu = await getGpu();
    const vgg = modelFromSpec(gpu, FASHION_VGG, undefined, { seed: 2 });
    const vggFile = join(dir, 'vgg.safetensors');
    writeFileSync(vggFile, await vgg.toSafetensors());
    vgg.dispose();
    const refused = join(dir, 'cam-refused');
    const err = await run(process.execPath, [cli, 'explain', '--model', vggFile, '--image', imageFile, '--method', 'vanilla,cam', '--out', refused]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/cam: needs a model whose head is conv features → global average pooling → one linear layer/);
    expect(existsSync(refused)).toBe(false); // vanilla.png used to be written first
    const out = join(dir, 'cam-skipped');
    const { stdout } = await run(process.execPath, [cli, 'explain', '--model', vggFile, '--image', imageFile, '--method', 'all', '--samples', '2', '--size', '16', '--out', out]);
    expect(stdout).toMatch(/cam: skipped \(cam: needs a model whose head is/);
    // After the prediction's line, before the methods' results.
    expect(stdout.indexOf('model fashion-vgg: predicted')).toBe(0);
    expect(stdout.indexOf('cam: skipped')).toBeLessThan(stdout.indexOf('vanilla'));
    // A fatal target error comes alone, without a note about CAM before it.
    const fatal = await run(process.execPath, [cli, 'explain', '--model', vggFile, '--image', imageFile, '--method', 'all', '--target', '12', '--out', join(dir, 'cam-fatal')]).catch((e) => e);
    expect(fatal.code).toBe(1);
    expect(fatal.stdout).toBe('');
    expect(fatal.stderr).toMatch(/^saliency: --target 12 is out of range/);
    expect(readdirSync(out).sort()).toEqual(['deconvnet', 'gradCam', 'gradTimesInput', 'guidedBackprop', 'guidedGradCam', 'overview', 'smoothGrad', 'vanilla'].map((m) => `${m}.png`));
  });

  it('sample writes a Fashion-MNIST test image as a PNG with its class, ready for explain', async () => {
    const out = join(dir, 'sample');
    const { stdout } = await run(process.execPath, [cli, 'sample', '--index', '1', '--out', out]);
    expect(stdout).toMatch(/Fashion-MNIST test image 1: Pullover \(class 2\) → .*fashion-1\.png/);
    const img = decodeImage(new Uint8Array(readFileSync(join(out, 'fashion-1.png'))));
    const test = loadFashionMnist('test', undefined, { limit: 2 });
    expect([img.width, img.height]).toEqual([28, 28]);
    for (let p = 0; p < 784; p++) expect(Math.abs(img.data[p * 4]! - test.images[784 + p]! * 255)).toBeLessThanOrEqual(0.5);
    const err = await run(process.execPath, [cli, 'sample', '--index', '10000', '--out', out]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/--index 10000 is out of range; the test set has 10000 images \(0\.\.9999\)/);
  });

  it('checks --out before the work, in one line (also where Node\'s mkdir -p never returns)', async () => {
    const file = join(dir, 'file.txt');
    writeFileSync(file, 'a file');
    const outs: [string, RegExp][] = [
      [join(file, 'sub'), /--out .*file\.txt\/sub: cannot write files there \(a part of the path is a file, not a directory\)/],
      [file, /--out .*file\.txt: cannot write files there \(.*file\.txt is a file, not a directory\)/],
    ];
    if (existsSync('/proc/self')) outs.push(['/proc/saliency-test', /--out \/proc\/saliency-test: cannot write files there/]);
    for (const [out, message] of outs) {
      for (const command of [
        ['explain', '--model', modelFile, '--image', imageFile, '--method', 'vanilla', '--size', '16'],
        ['features', '--model', modelFile, '--image', imageFile, '--layer', 'relu3', '--top', '1', '--size', '16'],
      ]) {
        const err = await run(process.execPath, [cli, ...command, '--out', out], { timeout: 60_000 }).catch((e) => e);
        expect(err.code, `${command[0]} --out ${out}`).toBe(1);
        expect(err.stderr).toMatch(message);
        expect(err.stdout).not.toMatch(/→/);
        // Refused before the model runs: no prediction line, no feature list.
        expect(err.stdout).toBe('');
      }
    }
  });

  it("features names its file after the layer without making directories of a graph model's '/'", async () => {
    const out = join(dir, 'graph-features');
    const layer = 'StatefulPartitionedCall/model_1/block1_conv1_act/Relu';
    const model = join('node_modules', '@vladmandic', 'human', 'models', 'emotion.json');
    const { stdout } = await run(process.execPath, [cli, 'features', '--model', model, '--image', 'assets/chelsea.png', '--layer', layer, '--top', '2', '--size', '24', '--out', out]);
    expect(stdout).toMatch(/the 2 most active of \d+ feature maps, projected to pixels → .*features-StatefulPartitionedCall_model_1_block1_conv1_act_Relu\.png/);
    expect(readdirSync(out)).toEqual(['features-StatefulPartitionedCall_model_1_block1_conv1_act_Relu.png']);
  });

  it('a one-output (sigmoid) model reports both sides and explains the side asked for', async () => {
    const gpu = await getGpu();
    // z = −0.523: σ(z) = 37.2%, so the prediction is the other side.
    expect(describePrediction({ classNames: ['real face'] }, Float32Array.of(-0.523), 'top')).toEqual({
      text: 'real face 37.2% → spoof; explaining spoof (target 1; score: the negated logit of real face, i.e. the logit of spoof)',
      label: 'spoof',
      index: 0,
      negate: true,
    });
    expect(describePrediction({ classNames: ['real face'] }, Float32Array.of(-0.523), 0)).toMatchObject({ label: 'real face', negate: false });
    expect(describePrediction({ classNames: ['cat'] }, Float32Array.of(2), 'top').text).toBe('cat 88.1% → cat; explaining cat (target 0; score: the logit of cat)');
    expect(describePrediction({ classNames: ['cat'] }, Float32Array.of(2), 1).label).toBe('not cat');
    expect(() => describePrediction({ classNames: ['cat'] }, Float32Array.of(2), 2)).toThrow(/--target 2 is out of range; the model has one sigmoid output: 0 \(cat\) or 1 \(not cat\)/);
    expect(describePrediction({ classNames: ['a', 'b'] }, Float32Array.of(0, 1), 'top').text).toBe('predicted b (73.1%); explaining b');

    // The other side's maps are the maps of −z: the vanilla gradient is negated, and guided
    // backprop (not an odd function of the score) is that of a model whose last layer is negated.
    const spec: ModelSpec = {
      input: [1, 6, 6],
      layers: [
        { name: 'conv1', type: 'conv2d', in: 1, out: 3, kernel: 3 },
        { name: 'relu1', type: 'relu' },
        { name: 'flat', type: 'flatten' },
        { name: 'fc', type: 'linear', in: 48, out: 1 },
      ],
    };
    const model = modelFromSpec(gpu, spec, undefined, { seed: 3 });
    const flipped = modelFromSpec(gpu, spec, undefined, { seed: 3 });
    const w = await flipped.layer('fc').params.get('weight')!.read();
    const b = await flipped.layer('fc').params.get('bias')!.read();
    const minus = modelFromSpec(gpu, spec, {
      conv1: { weight: await model.layer('conv1').params.get('weight')!.read(), bias: await model.layer('conv1').params.get('bias')!.read() },
      fc: { weight: w.map((v) => -v), bias: b.map((v) => -v) },
    });
    const x = tensor(gpu, Array.from({ length: 36 }, (_, i) => Math.sin(i)), [1, 1, 6, 6]);
    const other = negatedOutput(model);
    for (const method of ['vanilla', 'guidedBackprop', 'gradCam'] as const) {
      const got = await (await saliency.runMethod(method, other, x, { target: 0 })).read();
      const want = await (await saliency.runMethod(method, minus, x, { target: 0 })).read();
      for (let i = 0; i < want.length; i++) expect(got[i]!, `${method} ${i}`).toBeCloseTo(want[i]!, 5);
      if (method === 'vanilla') {
        const own = await (await saliency.vanilla(model, x, { target: 0 })).read();
        for (let i = 0; i < own.length; i++) expect(got[i]!).toBeCloseTo(-own[i]!, 5);
      }
    }
    flipped.dispose();
  });

  it('--raw writes each raw map as .npy next to its PNG: the library\'s map, values and shape', async () => {
    const out = join(dir, 'raw');
    const { stdout } = await run(process.execPath, [cli, 'explain', '--model', modelFile, '--image', imageFile, '--method', 'vanilla,gradCam', '--target', '9', '--raw', '--size', '32', '--out', out]);
    expect(stdout).toMatch(/vanilla\s+\d+ ms\s+→ .*vanilla\.png, vanilla\.npy/);
    expect(readdirSync(out).sort()).toEqual(['gradCam.npy', 'gradCam.png', 'overview.png', 'vanilla.npy', 'vanilla.png']);
    const gpu = await getGpu();
    const model = modelFromSafetensors(gpu, new Uint8Array(readFileSync(modelFile)));
    const input = imageToTensorData(readImage(imageFile), { channels: 1, width: 28, height: 28, background: [0, 0, 0] });
    const x = tensor(gpu, input, [1, 1, 28, 28]);
    for (const method of ['vanilla', 'gradCam'] as const) {
      const raw = await saliency.runMethod(method, model, x, { target: 9 });
      const want = await raw.read();
      const got = decodeNpy(new Uint8Array(readFileSync(join(out, `${method}.npy`))));
      expect(got.shape).toEqual([...raw.shape]);
      raw.dispose();
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got.data[i]! - want[i]!));
      expect(worst, method).toBeLessThanOrEqual(1e-6 * Math.max(...want.map(Math.abs)));
      expect(Math.max(...want.map(Math.abs))).toBeGreaterThan(0);
    }
    x.dispose();
    model.dispose();
    // Without --raw, no .npy; and pictures too small for a colour key (4 pixels) come without one.
    const plain = join(dir, 'plain');
    await run(process.execPath, [cli, 'explain', '--model', modelFile, '--image', imageFile, '--method', 'vanilla', '--size', '4', '--out', plain]);
    expect(readdirSync(plain).sort()).toEqual(['overview.png', 'vanilla.png']);
  });
});
