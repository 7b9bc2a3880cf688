/**
 * The command line with an ONNX model exported from PyTorch (test/fixtures/onnx, made by
 * scripts/make-onnx-fixtures.py): `explain --model resnet18.onnx --labels imagenet --normalize
 * imagenet --method all` on a cat, its maps drawn from PyTorch's own gradients; `saliency layers`
 * for every kind of model; --labels files and their errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { imagenetClasses, parseLabels } from '../src/nets/labels.js';
import { modelFromSpec } from '../src/nets/model.js';
import { FASHION_GAP } from '../src/nets/zoo.js';
import { FormatError } from '../src/runtime/errors.js';
import { decodeImage, readImage } from '../src/saliency/image.js';
import { cropRgba, imageToTensorData, inputToRgba } from '../src/saliency/input.js';
import { FIGURE_GAP } from '../src/cli/explain.js';
import { renderOverlay } from '../src/saliency/render.js';
import { getGpu } from './helpers.js';

const run = promisify(execFile);
const cli = 'dist/cli/main.js';
const FIX = 'test/fixtures/onnx';
const EMOTION = 'node_modules/@vladmandic/human/models/emotion.json';
const dir = mkdtempSync(join(tmpdir(), 'cli-onnx-'));

/** Runs the CLI; resolves with its output, also when it fails. */
async function saliency(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe.runIf(existsSync(cli))('saliency explain / layers with ONNX models', () => {
  beforeAll(async () => {
    const gpu = await getGpu();
    const gap = modelFromSpec(gpu, FASHION_GAP, undefined, { seed: 2 });
    writeFileSync(join(dir, 'gap.safetensors'), await gap.toSafetensors());
    gap.dispose();
  });

  it("explain --model resnet18.onnx --labels imagenet --normalize imagenet --method all: every method, vanilla and guided backprop drawn from PyTorch's gradients", async () => {
    const out = join(dir, 'out');
    const { code, stdout, stderr } = await saliency('explain', '--model', `${FIX}/resnet18.onnx`, '--labels', 'imagenet', '--normalize', 'imagenet', '--image', `${FIX}/cat64.png`, '--method', 'all', '--samples', '4', '--out', out, '--size', '64');
    expect(stderr.replace(/^Warning: .*\n/gm, '')).toBe('');
    expect(code).toBe(0);
    // PyTorch's top class for this image (scripts/make-onnx-fixtures.py), by its ImageNet name.
    const bin = readFileSync(`${FIX}/cat.expected.bin`);
    const expected = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
    const logits = expected.subarray(0, 1000);
    const top = logits.indexOf(Math.max(...logits));
    const names = await imagenetClasses();
    expect(stdout).toContain(`model resnet18: predicted ${names[top]} (`);
    expect(stdout).toContain(`explaining ${names[top]}`);
    for (const m of ['vanilla', 'deconvnet', 'guidedBackprop', 'gradTimesInput', 'smoothGrad', 'cam', 'gradCam', 'guidedGradCam']) {
      expect(stdout).toMatch(new RegExp(`${m}\\s+\\d+ ms\\s+→ .*${m}\\.png`));
      expect(existsSync(join(out, `${m}.png`)), m).toBe(true);
    }
    // The pictures are PyTorch's gradients (with respect to the pixels, through the normalisation)
    // drawn by the library's display steps.
    const n = 3 * 64 * 64;
    const input = imageToTensorData(readImage(`${FIX}/cat64.png`), { channels: 3, width: 64, height: 64, background: [0, 0, 0] });
    for (const [method, map] of [['vanilla', expected.subarray(1000, 1000 + n)], ['guidedBackprop', expected.subarray(1000 + n, 1000 + 2 * n)]] as const) {
      const want = renderOverlay({ data: Float32Array.from(map), shape: [1, 3, 64, 64] }, inputToRgba(input, 3, 64, 64), { size: 64, kind: 'attribution' });
      // The overlay inside its figure (label and colour key below it).
      const got = cropRgba(decodeImage(new Uint8Array(readFileSync(join(out, `${method}.png`)))), [FIGURE_GAP, FIGURE_GAP, 64, 64]);
      let worst = 0;
      for (let i = 0; i < got.data.length; i++) worst = Math.max(worst, Math.abs(got.data[i]! - want.data[i]!));
      expect(worst, method).toBeLessThanOrEqual(1);
    }
  });

  it('layers: every hook point of every model kind, with its op, output shape and the default layers', async () => {
    // ONNX: node output names, the op, Grad-CAM's default layer and CAM's features (GAP → Flatten → Gemm head).
    const onnx = await saliency('layers', '--model', `${FIX}/resnet18.onnx`);
    expect(onnx.code).toBe(0);
    expect(onnx.stdout).toContain('model resnet18: input [3, 64, 64] per image, output [1000], 49 layers');
    expect(onnx.stdout).toMatch(/\/conv1\/Conv_output_0\s+Conv\s+\[8, 32, 32\]\s+1184/);
    expect(onnx.stdout).toMatch(/\/layer4\/layer4\.1\/relu_1\/Relu_output_0\s+Relu\s+\[64, 2, 2\]\s+Grad-CAM default, CAM features/);
    expect(onnx.stdout).toMatch(/logits\s+Gemm\s+\[1000\]\s+65000/);
    // JSON: the same list, and node names where they differ.
    const json = JSON.parse((await saliency('layers', '--model', `${FIX}/vgg11_bn.onnx`, '--json')).stdout) as { layers: { name: string; op: string; node?: string; outputShape: number[]; notes: string[] }[] };
    const bn = json.layers.find((l) => l.op === 'BatchNormalization')!;
    expect(bn.node).toBe('/features/features.1/BatchNormalization');
    expect(json.layers.map((l) => l.op)).not.toContain('Shape'); // folded at load time
    expect(json.layers.find((l) => l.op === 'Reshape')!.outputShape).toEqual([256]);
    // Our own models: bundled by name and a safetensors file.
    const bundled = await saliency('layers', '--model', 'fashion-vgg');
    expect(bundled.code).toBe(0);
    expect(bundled.stdout).toMatch(/conv1\s+conv2d\s+\[16, 28, 28\]\s+160/);
    const gap = await saliency('layers', '--model', join(dir, 'gap.safetensors'));
    expect(gap.stdout).toMatch(/relu5\s+relu\s+\[128, 7, 7\]\s+Grad-CAM default, CAM features/);
    expect(gap.stdout).toMatch(/fc\s+linear\s+\[10\]\s+1290/);
    // A TF.js graph model: node names, TF ops, the logits before the softmax.
    if (existsSync(EMOTION)) {
      const emotion = await saliency('layers', '--model', EMOTION);
      expect(emotion.stdout).toMatch(/StatefulPartitionedCall\/model_1\/conv2d_5\/BiasAdd\s+_FusedConv2D\s+\[7, 8, 8\]\s+\d+\s+Grad-CAM default/);
      expect(emotion.stdout).toMatch(/global_average_pooling2d_1\/Mean\s+Mean\s+\[7\]\s+logits/);
    }
    // A TF.js layers model (Keras), saved by TF.js.
    await tf.setBackend('cpu');
    const m = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu', name: 'conv' }),
        tfl.layers.globalAveragePooling2d({ name: 'pool' }),
        tfl.layers.dense({ units: 2, name: 'dense' }),
      ],
    });
    await m.save(
      tf.io.withSaveHandler(async (a) => {
        writeFileSync(join(dir, 'keras.json'), JSON.stringify({ format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['keras.bin'], weights: a.weightSpecs }] }));
        writeFileSync(join(dir, 'keras.bin'), new Uint8Array(a.weightData as ArrayBuffer));
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    m.dispose();
    const keras = await saliency('layers', '--model', join(dir, 'keras.json'));
    expect(keras.code).toBe(0);
    expect(keras.stdout).toMatch(/conv\s+conv2d\s+\[4, 6, 6\]\s+112/);
    expect(keras.stdout).toMatch(/conv_relu\s+relu\s+\[4, 6, 6\]\s+Grad-CAM default, CAM features/);
    // A model that cannot be read: one clear line, exit code 1.
    const bad = await saliency('layers', '--model', join(dir, 'missing.onnx'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/saliency: cannot read .*missing\.onnx: no such file/);
  });

  it('--labels: text and JSON files for any model, and clear errors', async () => {
    writeFileSync(join(dir, 'fashion.txt'), 'shirt\ntrousers\npullover\ndress\ncoat\nsandal\nshirt 2\nsneaker\nbag\nboot\n\n');
    const ok = await saliency('explain', '--model', join(dir, 'gap.safetensors'), '--labels', join(dir, 'fashion.txt'), '--image', `${FIX}/cat64.png`, '--method', 'vanilla', '--target', '9', '--out', join(dir, 'o1'));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('explaining boot');
    writeFileSync(join(dir, 'three.json'), JSON.stringify({ 0: 'a', 1: 'b', 2: 'c' }));
    const wrong = await saliency('explain', '--model', `${FIX}/resnet18.onnx`, '--labels', join(dir, 'three.json'), '--image', `${FIX}/cat64.png`, '--method', 'vanilla', '--out', join(dir, 'o2'));
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/--labels .*three\.json has 3 labels, but model 'resnet18' has 1000 outputs/);
    const normal = await saliency('explain', '--model', join(dir, 'gap.safetensors'), '--normalize', 'imagenet', '--image', `${FIX}/cat64.png`, '--out', join(dir, 'o3'));
    expect(normal.code).toBe(1);
    expect(normal.stderr).toMatch(/--normalize and --input-shape apply to imported graphs/);
    const badNorm = await saliency('explain', '--model', `${FIX}/resnet18.onnx`, '--normalize', '1,2/0,1', '--image', `${FIX}/cat64.png`, '--out', join(dir, 'o4'));
    expect(badNorm.code).toBe(1);
    expect(badNorm.stderr).toMatch(/--normalize must be 'imagenet', 'none' or means\/stds/);
  });
});

describe('labels files', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it('text: one name per line; JSON: a list or an index → name object', async () => {
    expect(parseLabels(enc('\uFEFFcat\r\ndog\n  bird  \n\n'), 'a.txt')).toEqual(['cat', 'dog', 'bird']);
    expect(parseLabels(enc('["cat", "dog"]'), 'a.json')).toEqual(['cat', 'dog']);
    expect(parseLabels(enc('{"1": "dog", "0": "cat"}'), 'a.JSON')).toEqual(['cat', 'dog']);
    const names = await imagenetClasses();
    expect(names).toHaveLength(1000);
    expect(names[0]).toBe('tench, Tinca tinca');
    expect(names[281]).toBe('tabby, tabby cat');
    expect(new Set(names).size).toBeGreaterThan(995);
  });

  it('bad files are FormatErrors that say what is wrong', () => {
    const bad: [string, string, RegExp][] = [
      ['{"0": "a", "2": "b"}', 'x.json', /key '2' is not a class index 0\.\.1/],
      ['{"__proto__": "a"}', 'x.json', /key '__proto__' is not a class index/],
      ['{"constructor": "a"}', 'x.json', /key 'constructor' is not a class index/],
      ['[1, [2]]', 'x.json', /label 1 is not a string/],
      ['"cat"', 'x.json', /must hold a list of names or an object/],
      ['[oops', 'x.json', /is not valid JSON/],
      ['\n\n', 'x.txt', /holds no labels/],
    ];
    for (const [text, name, message] of bad) {
      const err = (() => {
        try {
          parseLabels(new TextEncoder().encode(text), name);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err, text).toBeInstanceOf(FormatError);
      expect(String(err), text).toMatch(message);
    }
    expect(() => parseLabels(Uint8Array.of(0xff, 0xfe, 0x00), 'x.txt')).toThrow(/is not UTF-8 text/);
    expect(parseLabels(new TextEncoder().encode('x'.repeat(5000)), 'x.txt')[0]).toHaveLength(1001);
  });
});
