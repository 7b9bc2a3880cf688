/** `saliency metrics`, run as a user runs it, on PNG files of Fashion-MNIST test images. */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../src/nets/idx.js';
import { loadModel } from '../src/nets/zoo.js';
import { tensor } from '../src/runtime/tensor.js';
import { decodeImage, encodePng } from '../src/saliency/image.js';
import * as saliency from '../src/saliency/index.js';
import { PLOT_COLORS } from '../src/saliency/plot.js';
import { getGpu } from './helpers.js';

const run = promisify(execFile);
const cli = 'dist/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
const images = join(dir, 'images');
const test = loadFashionMnist('test', undefined, { limit: 2 });

async function fails(args: string[]): Promise<string> {
  const r = await run(process.execPath, [cli, 'metrics', ...args]).then(
    () => null,
    (e: { code: number; stderr: string }) => e,
  );
  expect(r, args.join(' ')).not.toBeNull();
  expect(r!.code).toBe(1);
  return r!.stderr;
}

describe.runIf(existsSync(cli))('saliency metrics', () => {
  beforeAll(() => {
    mkdirSync(images);
    for (let i = 0; i < 2; i++) {
      const data = new Uint8ClampedArray(784 * 4);
      for (let p = 0; p < 784; p++) data.set([Math.round(test.images[i * 784 + p]! * 255), Math.round(test.images[i * 784 + p]! * 255), Math.round(test.images[i * 784 + p]! * 255), 255], p * 4);
      writeFileSync(join(images, `fashion-${i}.png`), encodePng({ width: 28, height: 28, data }));
    }
  });

  it('prints the table (method × metric, the random control row), and writes metrics.json, curves.png and randomisation.png', async () => {
    const out = join(dir, 'out');
    const { stdout } = await run(process.execPath, [
      cli, 'metrics', '--model', 'fashion-vgg', '--image', images, '--method', 'vanilla,gradCam', '--percentages', '50',
      '--sensitivity-samples', '2', '--box', 'auto', '--out', out,
    ], { maxBuffer: 1 << 24 });
    expect(stdout).toMatch(/model fashion-vgg: 2 images; explaining each image's predicted class/);
    const lines = stdout.split('\n');
    const head = lines.find((l) => l.startsWith('method'))!;
    for (const col of ['deletion AUC ↓', 'insertion AUC ↑', 'ROAD MoRF ↓', 'ROAD LeRF ↑', 'Avg Drop % ↓', 'Increase % ↑', 'max-sensitivity ↓', 'randomised: Spearman |E| ↓', 'randomised: SSIM ↓', 'pointing game % ↑']) {
      expect(head).toContain(col);
    }
    for (const row of ['vanilla', 'gradCam', 'random']) expect(lines.some((l) => l.startsWith(`${row} `) && /\d\.\d{3} ± \d\.\d{3}/.test(l))).toBe(true);
    expect(stdout).toMatch(/vanilla deletion: done/);
    expect(stdout).toMatch(/mean ± standard deviation over the 2 images/);

    const json = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(json.images).toHaveLength(2);
    expect(json.results.random.maxSensitivity).toBeUndefined();
    const del = json.results.vanilla.deletion;
    expect(del.curves).toHaveLength(2);
    expect(del.curves[0]).toHaveLength(29); // step 28 on 28×28: 28 steps, 29 points
    // The same numbers as the library gives in this process.
    const gpu = await getGpu();
    const model = await loadModel(gpu, 'fashion-vgg');
    const x = tensor(gpu, test.images, [2, 1, 28, 28]);
    const maps = await saliency.vanilla(model, x, { target: json.targets });
    const lib = await saliency.metrics.deletion(model, x, maps, { target: json.targets });
    lib.forEach((r, i) => expect(del.auc.values[i]).toBeCloseTo(r.auc, 6));
    const cam = await saliency.gradCam(model, x, { target: json.targets });
    const ins = await saliency.metrics.insertion(model, x, cam, { target: json.targets, kind: 'cam' });
    ins.forEach((r, i) => expect(json.results.gradCam.insertion.auc.values[i]).toBeCloseTo(r.auc, 6));
    for (const t of [maps, cam, x]) t.dispose();
    model.dispose();
    expect(json.results.vanilla.randomisation.layers).toEqual(['fc2', 'fc1', 'conv4', 'conv3', 'conv2', 'conv1']);

    const curves = decodeImage(new Uint8Array(readFileSync(join(out, 'curves.png'))));
    expect(curves.width).toBeGreaterThan(1200); // two panels side by side
    const rnd = decodeImage(new Uint8Array(readFileSync(join(out, 'randomisation.png'))));
    expect(rnd.width).toBeGreaterThan(1200);
    // Not blank: the two methods' lines are drawn in their colours (the first two of PLOT_COLORS).
    const colours = new Set<number>();
    for (let i = 0; i < curves.data.length; i += 4) colours.add((curves.data[i]! << 16) | (curves.data[i + 1]! << 8) | curves.data[i + 2]!);
    for (const [r, g, b] of PLOT_COLORS.slice(0, 2)) expect(colours.has((r << 16) | (g << 8) | b)).toBe(true);
  });

  it('--memory-budget and --batch-size: an explicit batch too large for the budget is split, with one warning, and gives the numbers of one batch', async () => {
    const args = (out: string, ...more: string[]) => [cli, 'metrics', '--model', 'fashion-vgg', '--image', images, '--method', 'vanilla', '--metric', 'deletion,maxSensitivity', '--sensitivity-samples', '3', '--out', out, ...more];
    // 4 MiB: fashion-vgg's weights take about 1 MiB, and 56 perturbed images (28 steps of 2) about 6 MiB.
    const split = await run(process.execPath, args(join(dir, 'split'), '--memory-budget', '4', '--batch-size', '56'), { maxBuffer: 1 << 24 });
    const warnings = split.stderr.split('\n').filter((l) => l.startsWith('saliency: '));
    expect(warnings.filter((l) => l.startsWith('saliency: deletion: '))).toHaveLength(1); // the vanilla and random rows: said once
    expect(warnings[0]).toMatch(/^saliency: deletion: a batch of 56 perturbed images needs about [\d.]+ MiB, more than the memory budget leaves \(4 MiB, of which .* in use\); running batches of at most \d+ instead$/);
    const one = await run(process.execPath, args(join(dir, 'one'), '--batch-size', '1000'), { maxBuffer: 1 << 24 });
    expect(one.stderr).not.toMatch(/^saliency: /m);
    const auto = await run(process.execPath, args(join(dir, 'auto'), '--memory-budget', '4'), { maxBuffer: 1 << 24 });
    expect(auto.stderr).not.toMatch(/^saliency: /m);
    const read = (out: string) => JSON.parse(readFileSync(join(dir, out, 'metrics.json'), 'utf8'));
    expect(read('split').options.batchSize).toBe(56);
    expect(read('auto').options.batchSize).toBe('auto');
    for (const out of ['split', 'auto']) {
      for (const row of ['vanilla', 'random']) {
        read(out).results[row].deletion.curves.flat().forEach((v: number, i: number) => expect(v).toBeCloseTo(read('one').results[row].deletion.curves.flat()[i], 5));
      }
      read(out).results.vanilla.maxSensitivity.values.forEach((v: number, i: number) => expect(v).toBeCloseTo(read('one').results.vanilla.maxSensitivity.values[i], 5));
    }
  });

  it('an imported ONNX model: randomisation runs on its clone(), every Conv and the Gemm re-initialised from the logits down', async () => {
    const out = join(dir, 'onnx');
    const { stdout, stderr } = await run(process.execPath, [
      cli, 'metrics', '--model', 'test/fixtures/onnx/resnet18.onnx', '--image', 'test/fixtures/onnx/cat64.png', '--method', 'vanilla', '--metric', 'randomisation', '--out', out,
    ], { maxBuffer: 1 << 24 });
    expect(stdout).toMatch(/model resnet18: 1 image/);
    expect(stderr).not.toMatch(/^saliency: /m);
    const r = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')).results.vanilla.randomisation;
    // ResNet-18: 20 convolutions and the fc, whose output is the logits.
    expect(r.layers).toHaveLength(21);
    expect(r.layers[0]).toBe('logits');
    expect(r.steps).toHaveLength(22);
    expect(r.steps.at(-1).randomised).toHaveLength(21);
    expect(r.finalSpearmanAbs.mean).toBeLessThan(0.9);
  });

  it('refuses bad options in one line, before the GPU work', async () => {
    const img = join(images, 'fashion-0.png');
    expect(await fails(['--model', 'fashion-vgg', '--image', img, '--metric', 'deletion,speed'])).toMatch(/^saliency: unknown metric 'speed'; choose from deletion, insertion, road, averageDrop, maxSensitivity, randomisation, pointingGame, or all$/m);
    expect(await fails(['--model', 'fashion-vgg', '--image', img, '--method', 'vanila'])).toMatch(/^saliency: unknown method 'vanila'; choose from vanilla, /m);
    expect(await fails(['--model', 'fashion-vgg', '--image', img, '--percentages', '10,100'])).toMatch(/--percentages must be numbers in \(0, 100\)/);
    expect(await fails(['--model', 'fashion-vgg', '--image', img, '--metric', 'pointingGame'])).toMatch(/pointingGame needs the object's box/);
    expect(await fails(['--model', 'fashion-vgg', '--image', join(dir, 'nothing.png')])).toMatch(/--image .*nothing\.png: no such file or folder/);
    expect(await fails(['--model', 'fashion-vgg', '--image', img, '--step', '1000', '--metric', 'deletion', '--method', 'vanilla'])).toMatch(/^saliency: --step must be at most H·W = 784 \(the model input's pixels\), got 1000$/m);
    expect(await fails(['--model', 'fashion-vgg', '--image', img, '--batch-size', '0'])).toMatch(/--batch-size must be 'auto' or a positive integer/);
    expect(await fails(['--model', 'fashion-vgg', '--image', img, '--memory-budget', 'lots'])).toMatch(/--memory-budget must be a positive integer/);
    // A run that fails before its first file (here loading a broken model) leaves no --out
    // directory behind; a --out where nothing can be written is refused before the GPU work.
    const broken = join(dir, 'broken.safetensors');
    writeFileSync(broken, 'not a safetensors file');
    const out = join(dir, 'never-made');
    expect(await fails(['--model', broken, '--image', img, '--out', out])).toMatch(/broken\.safetensors/);
    expect(existsSync(out)).toBe(false);
    writeFileSync(join(dir, 'a-file'), '');
    expect(await fails(['--model', 'fashion-vgg', '--image', img, '--out', join(dir, 'a-file', 'sub')])).toMatch(/^saliency: --out .*a-file\/sub: cannot write files there/m);
    const help = (await run(process.execPath, [cli, 'metrics', '--help'])).stdout;
    for (const option of ['--model', '--image', '--crop', '--method', '--metric', '--target', '--layer', '--samples', '--noise-level', '--seed', '--step', '--batch-size', '--memory-budget', '--percentages', '--radius', '--sensitivity-samples', '--order', '--box', '--tolerance', '--out']) {
      expect(help).toContain(option);
    }
  });
});
