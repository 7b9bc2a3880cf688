/**
 * The demo page and <saliency-view> in real headless Chromium (Debian's /usr/bin/chromium, driven by
 * puppeteer-core; WebGPU through SwiftShader), served by the same Vite server as `npm run web`.
 *
 * The first test runs the bundled, trained fashion-vgg by name (its committed weights served from
 * models/), or, without them, the same architecture with seeded random weights from a file; the
 * others use files made here (random weights), so they do not depend on trained weights, except
 * one that runs D-RISE with the bundled fashion-detector by name when its weights are committed. Every map the page computes is computed again in Node (Dawn on the
 * machine's adapter, lavapipe here) from the same model file and the same PNG, and must agree to
 * 1e-4. With UPDATE_SCREENSHOT=1 it rewrites web/screenshot.png (docs/web.md's picture).
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type ElementHandle, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebServer, type WebServer } from '../scripts/web.mjs';
import { noGrad } from '../src/autodiff/tape.js';
import { initGpu, type Gpu } from '../src/runtime/gpu.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { modelFromSafetensors, modelFromSpec, type Model } from '../src/nets/model.js';
import { FASHION_MNIST_DIR, readIdx } from '../src/nets/idx.js';
import { FASHION_GAP, FASHION_VGG, bundledWeightsUrl, loadModel } from '../src/nets/zoo.js';
import { FASHION_DETECTOR, detect, heldOutScene } from '../src/nets/detector.js';
import { iou } from '../src/nets/boxes.js';
import { loadFashionMnist } from '../src/nets/idx.js';
import * as saliency from '../src/saliency/index.js';
import { decodeImage, imageToTensorData, readImage, writePng } from '../src/saliency/image.js';
import { inputToRgba } from '../src/saliency/input.js';
import { cropRgba } from '../src/saliency/input.js';
import { CHROMIUM, CHROMIUM_FLAGS, haveChromium } from './chromium.js';
import { FASHION_CLASSES } from '../src/nets/classes.js';
import { loadTfjsGraphModel } from '../src/nets/tfjs-graph.js';
import { loadOnnxModel } from '../src/nets/onnx/model.js';
import { IMAGENET_NORMALIZATION } from '../src/nets/normalization.js';
import { imagenetClasses } from '../src/nets/labels.js';
import { runMethod } from '../src/saliency/methods.js';

if (!haveChromium) {
  console.warn(`test/web.test.ts: SKIPPED: ${CHROMIUM} is missing; install it with 'apt-get install chromium' (scripts/setup-system.sh does)`);
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EMOTION = join(ROOT, 'node_modules', '@vladmandic', 'human', 'models', 'emotion.json');
const TOLERANCE = 1e-4;

interface PageEvent {
  type: 'saliency-result' | 'saliency-error' | 'saliency-progress';
  method: string;
  /** performance.now() in the page when the event fired. */
  t: number;
  ms?: number;
  target?: number;
  map?: number[];
  shape?: number[];
  input?: number[];
  classes?: { index: number; name: string; probability: number }[];
  message?: string;
  done?: number;
  total?: number;
}

declare global {
  interface Window {
    __events: PageEvent[];
  }
}

/** Installed before the page's scripts: records every saliency event, with typed arrays as plain arrays. */
function recordEvents(): void {
  window.__events = [];
  for (const type of ['saliency-result', 'saliency-error', 'saliency-progress'] as const) {
    document.addEventListener(type, (e) => {
      const d = (e as CustomEvent).detail;
      window.__events.push(
        type === 'saliency-result'
          ? { type, t: performance.now(), method: d.method, target: d.target, map: Array.from(d.map), shape: d.shape, input: Array.from(d.input), classes: d.classes, ms: d.ms }
          : type === 'saliency-error'
            ? { type, t: performance.now(), method: d.method, message: d.message }
            : { type, t: performance.now(), method: d.method, done: d.done, total: d.total },
      );
    });
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Luminance variance of each <saliency-view>'s overlay canvas, by method. */
async function overlayVariance(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => {
    const out: Record<string, number> = {};
    for (const view of document.querySelectorAll('saliency-view')) {
      const canvas = view.shadowRoot!.querySelector('canvas.overlay') as HTMLCanvasElement;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let s = 0;
      let s2 = 0;
      const n = data.length / 4;
      for (let p = 0; p < n; p++) {
        const y = 0.299 * data[4 * p]! + 0.587 * data[4 * p + 1]! + 0.114 * data[4 * p + 2]!;
        s += y;
        s2 += y * y;
      }
      out[view.getAttribute('method')!] = s2 / n - (s / n) ** 2;
    }
    return out;
  });
}

describe('the web component bundles for browsers', () => {
  it('src/web/index.ts builds with Vite, without Node modules', async () => {
    const { build } = await import('vite');
    const result = (await build({
      root: ROOT,
      configFile: false,
      logLevel: 'silent',
      build: { write: false, minify: false, lib: { entry: 'src/web/index.ts', formats: ['es'], fileName: 'saliency-view' } },
    })) as { output: { type: string; code?: string; fileName: string }[] }[];
    const chunks = result.flatMap((r) => r.output).filter((o) => o.type === 'chunk');
    const code = chunks.map((c) => c.code).join('\n');
    expect(code).toContain("customElements.define");
    expect(code).toContain('@compute @workgroup_size');
    expect(code).not.toMatch(/from\s+['"]node:/);
    expect(code).not.toContain('dawn.node');
  });
});

describe.skipIf(!haveChromium)('<saliency-view> and the demo page in headless Chromium', () => {
  let gpu: Gpu;
  let dir: string;
  let server: WebServer;
  let browser: Browser;
  let vggBytes: Uint8Array;
  let gapBytes: Uint8Array;
  let detectorBytes: Uint8Array;
  let pngPath: string;
  let scene: ReturnType<typeof heldOutScene> | null = null;
  const SCENE_INDEX = 7;

  beforeAll(async () => {
    gpu = await initGpu();
    dir = mkdtempSync(join(tmpdir(), 'saliency-web-'));
    // Models with seeded random weights, saved as the page will fetch them.
    const vgg = modelFromSpec(gpu, FASHION_VGG, undefined, { seed: 7 });
    vggBytes = await vgg.toSafetensors();
    vgg.dispose();
    const gap = modelFromSpec(gpu, FASHION_GAP, undefined, { seed: 8 });
    gapBytes = await gap.toSafetensors();
    gap.dispose();
    const det = modelFromSpec(gpu, FASHION_DETECTOR, undefined, { seed: 9 });
    detectorBytes = await det.toSafetensors();
    det.dispose();
    writeFileSync(join(dir, 'detector.safetensors'), detectorBytes);
    writeFileSync(join(dir, 'vgg.safetensors'), vggBytes);
    writeFileSync(join(dir, 'gap.safetensors'), gapBytes);
    // A 28×28 grey PNG: the first Fashion-MNIST test image (an ankle boot), or a drawn shape.
    const pixels = new Uint8ClampedArray(28 * 28 * 4);
    const images = join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz');
    const grey = existsSync(images)
      ? readIdx(images).data.subarray(0, 784)
      : Uint8Array.from({ length: 784 }, (_, p) => (Math.hypot((p % 28) - 14, Math.floor(p / 28) - 12) < 9 ? 200 + (p % 7) * 8 : 10));
    grey.forEach((v, p) => pixels.set([v, v, v, 255], 4 * p));
    pngPath = join(dir, 'item.png');
    writePng(pngPath, { width: 28, height: 28, data: pixels });
    // A held-out detector scene (test images only), for the bundled detector.
    if (existsSync(images)) {
      scene = heldOutScene(loadFashionMnist('test'), SCENE_INDEX);
      writePng(join(dir, 'scene.png'), inputToRgba(scene.image, 1, 96, 96));
    }

    // A cold dependency cache, as on CI: the page must not be reloaded by Vite's optimiser mid-test.
    server = await startWebServer({ port: 0, strictPort: true, logLevel: 'silent', mounts: { '/__fixtures/': dir }, cacheDir: join(dir, 'vite-cache') });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    gpu?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The demo page of the first test, reused by the next ones (one GPU device, pipelines compiled once). */
  let demo: { page: Page; errors: string[] } | null = null;

  /** A fresh page that records saliency events, console errors and page errors. */
  async function open(path: string, setup?: () => void): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${(e as Error).message}`));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.protocol !== 'data:' && u.protocol !== 'blob:' && u.host !== `127.0.0.1:${server.port}`) errors.push(`request outside localhost: ${r.url()}`);
    });
    await page.setViewport({ width: 1300, height: 900 });
    await page.evaluateOnNewDocument(recordEvents);
    if (setup) await page.evaluateOnNewDocument(setup);
    await page.goto(`http://127.0.0.1:${server.port}${path}`, { waitUntil: 'load' });
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) errors.push(`the page was reloaded or navigated: ${f.url()}`);
    });
    return { page, errors };
  }

  /** Waits for a result or an error of every method; on a timeout, says where each view stands. */
  /**
   * Waits until every method has a result or an error; with `inputSize`, until every method has a
   * result for an input of that many values (runs of an earlier model, cancelled by a switch, are
   * then ignored).
   */
  async function waitForEvents(page: Page, methods: string[], timeout = 240_000, inputSize = 0): Promise<PageEvent[]> {
    try {
      await page.waitForFunction(
        (ms: string[], size: number) =>
          ms.every((m) =>
            window.__events.some((e) => e.method === m && (size ? e.type === 'saliency-result' && e.input?.length === size : e.type !== 'saliency-progress')),
          ),
        { timeout, polling: 200 },
        methods,
        inputSize,
      );
    } catch (e) {
      const state = await page.evaluate(() =>
        [...document.querySelectorAll('saliency-view')].map((v) => `${v.getAttribute('method')}: ${v.shadowRoot!.querySelector('.status')!.textContent}`),
      );
      throw new Error(`${(e as Error).message}; views: ${state.join('; ') || 'none'}; page errors: ${demo?.errors.join('; ') || 'none'}`);
    }
    return page.evaluate(() => window.__events);
  }

  it('runs the methods on the demo page and matches the Node path (1e-4)', { timeout: 300_000 }, async () => {
    const methods = ['vanilla', 'guidedBackprop', 'gradCam', 'guidedGradCam', 'smoothGrad'];
    // The bundled, trained fashion-vgg by name once its weights are committed; else the same
    // architecture with random weights from a file.
    const bundled = existsSync(fileURLToPath(bundledWeightsUrl('fashion-vgg')));
    demo = await open(`/web/?model=${bundled ? 'fashion-vgg' : '/__fixtures/vgg.safetensors'}&methods=${methods.join(',')}&samples=8`);
    const { page, errors } = demo;
    await page.waitForSelector('body[data-ready]');
    expect(await page.evaluate(() => !!navigator.gpu)).toBe(true);
    const file = (await page.$('#file')) as ElementHandle<HTMLInputElement>;
    await file.uploadFile(pngPath);
    const events = await waitForEvents(page, methods);
    const failures = events.filter((e) => e.type === 'saliency-error');
    expect(failures).toEqual([]);
    const results = new Map(events.filter((e) => e.type === 'saliency-result').map((e) => [e.method, e]));
    console.log(`page timeline: ${[...results.values()].map((e) => `${e.method} done at ${(e.t / 1000).toFixed(1)} s (${e.ms!.toFixed(0)} ms)`).join(', ')}`);
    expect(events.some((e) => e.type === 'saliency-progress' && e.method === 'smoothGrad' && e.done === 8)).toBe(true);

    // Node: the same file, the same PNG, the same conversion.
    const model = bundled ? await loadModel(gpu, 'fashion-vgg') : modelFromSafetensors(gpu, vggBytes);
    const input = imageToTensorData(readImage(pngPath), { channels: 1, width: 28, height: 28, background: [0, 0, 0] });
    const x = tensor(gpu, input, [1, 1, 28, 28]);
    const out = await noGrad(gpu, () => model.forward(x, { logits: true }));
    const logits = await out.read();
    out.dispose();
    const top = logits.indexOf(Math.max(...logits));
    const diffs: Record<string, number> = {};
    const scales: Record<string, number> = {};
    for (const method of methods) {
      const r = results.get(method)!;
      expect(r.input).toEqual(Array.from(input));
      expect(r.target).toBe(top);
      expect(r.classes![0]!.index).toBe(top);
      let expected: Tensor;
      if (method === 'smoothGrad') expected = await saliency.smoothGrad(model, x, { target: top, samples: 8, noiseLevel: 0.15, seed: 0 });
      else expected = await saliency.runMethod(method as 'vanilla' | 'guidedBackprop' | 'gradCam' | 'guidedGradCam', model, x, { target: top });
      expect(r.shape).toEqual(expected.shape);
      const want = await expected.read();
      expected.dispose();
      diffs[method] = maxAbsDiff(r.map!, want);
      scales[method] = Math.max(...want.map(Math.abs));
      expect(Math.max(...want.map(Math.abs)), `${method} is not all zero`).toBeGreaterThan(0);
    }
    console.log(`page vs Node, max |difference| (max |value|): ${Object.entries(diffs).map(([m, d]) => `${m} ${d.toExponential(1)} (${scales[m]!.toExponential(1)})`).join(', ')}`);
    for (const [method, d] of Object.entries(diffs)) {
      if (method === 'smoothGrad') {
        // The noise is N(0, σ²) by Box–Muller on the GPU, and WGSL leaves the precision of log()
        // and cos() to the implementation: SwiftShader and lavapipe draw slightly different noise,
        // and a few ReLUs flip. The deterministic methods above must agree to 1e-4.
        expect(d / scales[method]!, method).toBeLessThanOrEqual(0.05);
      } else {
        expect(d, method).toBeLessThanOrEqual(TOLERANCE);
        expect(d / scales[method]!, `${method}, relative`).toBeLessThanOrEqual(1e-3);
      }
    }
    x.dispose();
    model.dispose();

    const variance = await overlayVariance(page);
    for (const method of methods) expect(variance[method], `${method} overlay is blank`).toBeGreaterThan(20);
    expect(errors).toEqual([]);
  });

  it.skipIf(!existsSync(EMOTION))('an imported TF.js model (human emotion) on a face region, as in Node; the screenshot', { timeout: 300_000 }, async () => {
    const methods = ['vanilla', 'guidedBackprop', 'gradCam', 'guidedGradCam'];
    const crop = [170, 40, 120, 120] as const; // the astronaut's face, as in docs/import.md's CLI example
    // Chosen in the page's model list (served from node_modules by the demo server), not by URL.
    const { page, errors } = await open(`/web/?methods=${methods.join(',')}&image=/assets/astronaut.png&crop=${crop.join(',')}`);
    await page.waitForSelector('body[data-ready]');
    await page.select('#model', '/human-models/emotion.json');
    const events = await waitForEvents(page, methods, 240_000, 64 * 64);
    // Runs of the page's first model may be cancelled by the switch; nothing else may fail.
    const superseded = /: (cancelled|replaced by a newer run)$/;
    expect(events.filter((e) => e.type === 'saliency-error' && !superseded.test(e.message!)).map((e) => `${e.method}: ${e.message}`)).toEqual([]);
    const results = new Map(events.filter((e) => e.type === 'saliency-result' && e.input!.length === 64 * 64).map((e) => [e.method, e]));

    const model = await loadTfjsGraphModel(gpu, EMOTION, { classNames: ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'] });
    const [channels, height, width] = model.inputShape as [1, number, number];
    const input = imageToTensorData(cropRgba(readImage(join(ROOT, 'assets', 'astronaut.png')), crop), { channels, width, height, background: [0, 0, 0] });
    const x = tensor(gpu, input, [1, channels, height, width]);
    const out = await noGrad(gpu, () => model.forward(x, { logits: true }));
    const logits = await out.read();
    out.dispose();
    const top = logits.indexOf(Math.max(...logits));
    const diffs: string[] = [];
    for (const method of methods) {
      const r = results.get(method)!;
      expect(maxAbsDiff(r.input!, input), `${method} input`).toBe(0);
      expect(r.target).toBe(top);
      expect(r.classes![0]!.name).toBe(model.classNames![top]);
      const expected = await saliency.runMethod(method as 'vanilla' | 'guidedBackprop' | 'gradTimesInput' | 'gradCam' | 'guidedGradCam', model, x, { target: top });
      expect(r.shape).toEqual(expected.shape);
      const want = await expected.read();
      expected.dispose();
      const scale = Math.max(...want.map(Math.abs));
      const d = maxAbsDiff(r.map!, want);
      diffs.push(`${method} ${d.toExponential(1)} (${scale.toExponential(1)})`);
      expect(scale, `${method} is not all zero`).toBeGreaterThan(0);
      expect(d, method).toBeLessThanOrEqual(TOLERANCE * Math.max(1, scale));
    }
    console.log(`emotion, page vs Node, max |difference| (max |value|): ${diffs.join(', ')}`);
    x.dispose();
    model.dispose();
    const variance = await overlayVariance(page);
    for (const method of methods) expect(variance[method], `${method} overlay is blank`).toBeGreaterThan(20);
    // The picture in docs/web.md is refreshed only on request, so test runs leave the tree clean.
    const shot = process.env.UPDATE_SCREENSHOT ? join(ROOT, 'web', 'screenshot.png') : join(tmpdir(), 'webgpu-saliency-screenshot.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('<saliency-view> alone: src URL and <img> (colour profile ignored, bilinear shrink), CAM on a GAP model', async () => {
    const { page, errors } = demo ?? (await open('/web/?methods='));
    const errorsBefore = errors.length;
    const out = await page.evaluate(async () => {
      await customElements.whenDefined('saliency-view');
      const view = document.createElement('saliency-view');
      view.setAttribute('manual', '');
      view.setAttribute('model', '/__fixtures/gap.safetensors');
      view.setAttribute('method', 'cam');
      view.setAttribute('target', '3');
      view.setAttribute('src', '/assets/chelsea.png');
      document.body.append(view);
      const r = await view.run();
      // The same picture as an <img> element (decoded by the page, then read without colour management).
      const img = new Image();
      img.src = '/assets/chelsea.png';
      view.image = img;
      const fromImg = await view.run();
      return {
        input: Array.from(r.input),
        imgInput: Array.from(fromImg.input),
        map: Array.from(r.map),
        shape: r.shape,
        target: r.target,
        classes: r.classes.map((c) => c.index),
      };
    });
    // chelsea.png is 451×300 RGB with an ICC profile; the page must read its stored bytes, as pngjs does.
    const input = imageToTensorData(readImage(join(ROOT, 'assets', 'chelsea.png')), { channels: 1, width: 28, height: 28, background: [0, 0, 0] });
    expect(maxAbsDiff(out.input, input)).toBe(0);
    expect(maxAbsDiff(out.imgInput, input)).toBe(0);
    expect(out.target).toBe(3);
    expect(out.classes).toContain(3);
    const model = modelFromSafetensors(gpu, gapBytes);
    const x = tensor(gpu, input, [1, 1, 28, 28]);
    const expected = await saliency.cam(model, x, { target: 3 });
    expect(out.shape).toEqual(expected.shape);
    expect(maxAbsDiff(out.map, await expected.read())).toBeLessThanOrEqual(TOLERANCE);
    expected.dispose();
    x.dispose();
    model.dispose();
    expect(errors.slice(errorsBefore)).toEqual([]);
  });

  it('an ONNX file exported from PyTorch (torchvision resnet18), with labels="imagenet" and normalize="imagenet", as in Node', async () => {
    const { page, errors } = demo ?? (await open('/web/?methods='));
    const errorsBefore = errors.length;
    copyFileSync(join(ROOT, 'test', 'fixtures', 'onnx', 'resnet18.onnx'), join(dir, 'resnet18.onnx'));
    const methods = ['vanilla', 'guidedBackprop', 'cam', 'gradCam'];
    const out = await page.evaluate(async (ms: string[]) => {
      await customElements.whenDefined('saliency-view');
      const view = document.createElement('saliency-view');
      view.setAttribute('manual', '');
      view.setAttribute('model', '/__fixtures/resnet18.onnx');
      view.setAttribute('labels', 'imagenet');
      view.setAttribute('normalize', 'imagenet');
      view.setAttribute('src', '/assets/chelsea.png');
      document.body.append(view);
      const results = [];
      for (const m of ms) {
        view.setAttribute('method', m);
        const r = await view.run();
        results.push({ method: m, map: Array.from(r.map), shape: r.shape, target: r.target, input: Array.from(r.input), top: r.classes[0]! });
      }
      view.remove();
      return results;
    }, methods);
    const model = await loadOnnxModel(gpu, join(ROOT, 'test', 'fixtures', 'onnx', 'resnet18.onnx'), { normalize: IMAGENET_NORMALIZATION });
    const input = imageToTensorData(readImage(join(ROOT, 'assets', 'chelsea.png')), { channels: 3, width: 64, height: 64, background: [0, 0, 0] });
    const x = tensor(gpu, input, [1, 3, 64, 64]);
    const logits = await noGrad(gpu, () => model.forward(x, { logits: true }));
    const l = await logits.read();
    logits.dispose();
    const top = l.indexOf(Math.max(...l));
    const names = await imagenetClasses();
    const diffs: string[] = [];
    for (const r of out) {
      expect(maxAbsDiff(r.input, input), `${r.method} input`).toBe(0);
      expect(r.target).toBe(top);
      expect(r.top.name).toBe(names[top]);
      const expected = await runMethod(r.method as 'vanilla', model, x, { target: top });
      expect(r.shape).toEqual(expected.shape);
      const want = await expected.read();
      expected.dispose();
      const scale = Math.max(...want.map(Math.abs));
      const d = maxAbsDiff(r.map, want);
      diffs.push(`${r.method} ${d.toExponential(1)} (${scale.toExponential(1)})`);
      expect(scale, `${r.method} is not all zero`).toBeGreaterThan(0);
      expect(d, r.method).toBeLessThanOrEqual(TOLERANCE * Math.max(1, scale));
    }
    console.log(`resnet18.onnx, page vs Node, max |difference| (max |value|): ${diffs.join(', ')}`);
    x.dispose();
    model.dispose();
    expect(errors.slice(errorsBefore)).toEqual([]);
  });

  it('in the page, repeated runs of every classifier method end with the GPU memory they started with', async () => {
    const { page, errors } = demo ?? (await open('/web/?methods='));
    const errorsBefore = errors.length;
    const out = await page.evaluate(async () => {
      await customElements.whenDefined('saliency-view');
      // The page's own module instance (Vite serves each source file at one URL). The import is
      // built from a string so that vitest does not rewrite it for Node.
      const load = new Function('url', 'return import(url)') as (url: string) => Promise<typeof import('../src/web/models.js')>;
      const { sharedGpu } = await load('/src/web/models.ts');
      const gpu = await sharedGpu();
      const view = document.createElement('saliency-view');
      view.setAttribute('manual', '');
      view.setAttribute('model', '/__fixtures/gap.safetensors');
      view.setAttribute('src', '/assets/chelsea.png');
      view.setAttribute('samples', '4');
      document.body.append(view);
      const methods = ['vanilla', 'deconvnet', 'guidedBackprop', 'gradTimesInput', 'smoothGrad', 'cam', 'gradCam', 'guidedGradCam'];
      const round = async () => {
        for (const m of methods) {
          view.setAttribute('method', m);
          await view.run();
        }
      };
      await round(); // models loaded and cached, pipelines compiled
      await gpu.sync();
      const start = gpu.memory();
      for (let i = 0; i < 3; i++) await round();
      await gpu.sync();
      const end = gpu.memory();
      view.remove();
      return { start, end };
    });
    // The view's GPU: it holds the cached model's weights.
    expect(out.start.tensors).toBeGreaterThan(0);
    expect(out.end.inUse).toBe(out.start.inUse);
    expect(out.end.tensors).toBe(out.start.tensors);
    expect(out.end.buffers).toBeLessThanOrEqual(out.start.buffers);
    expect(errors.slice(errorsBefore)).toEqual([]);
  });

  it('D-RISE: lists the detections and explains the chosen one as Node does', async () => {
    const { page, errors } = demo ?? (await open('/web/?methods='));
    const errorsBefore = errors.length;
    const out = await page.evaluate(async () => {
      await customElements.whenDefined('saliency-view');
      const view = document.createElement('saliency-view');
      const attrs = { manual: '', model: '/__fixtures/detector.safetensors', method: 'drise', src: '/__fixtures/item.png', threshold: '0.5', detection: '1', masks: '8', grid: '8', seed: '3' };
      for (const [k, v] of Object.entries(attrs)) view.setAttribute(k, v);
      document.body.append(view);
      const r = await view.run();
      const buttons = [...view.shadowRoot!.querySelectorAll('.detections button')].map((b) => b.className);
      return { input: Array.from(r.input), map: Array.from(r.map), shape: r.shape, target: r.target, detections: r.detections!, buttons };
    });
    const t1 = performance.now();
    const model = modelFromSafetensors(gpu, detectorBytes);
    const input = imageToTensorData(readImage(pngPath), { channels: 1, width: 96, height: 96, background: [0, 0, 0] });
    expect(maxAbsDiff(out.input, input)).toBe(0);
    const x = tensor(gpu, input, [1, 1, 96, 96]);
    const [dets] = await detect(model, x, { threshold: 0.5 });
    expect(dets!.length).toBeGreaterThan(1); // random weights: several boxes pass 0.5
    expect(out.detections.length).toBe(dets!.length);
    expect(out.buttons.length).toBe(dets!.length);
    expect(out.buttons[1]).toBe('chosen');
    expect(out.target).toBe(1);
    const expected = await saliency.drise((images) => detect(model, images, { threshold: 0 }), x, { target: dets![1]!, masks: 8, gridSize: 8, seed: 3 });
    expect(out.shape).toEqual(expected.shape);
    const want = await expected.read();
    const d = maxAbsDiff(out.map, want);
    console.log(`D-RISE page vs Node: max |difference| ${d.toExponential(1)} (max |value| ${Math.max(...want.map(Math.abs)).toExponential(1)}); Node ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    expect(d).toBeLessThanOrEqual(TOLERANCE * Math.max(1, Math.max(...want.map(Math.abs))));
    expected.dispose();
    x.dispose();
    model.dispose();
    expect(errors.slice(errorsBefore)).toEqual([]);
  });

  const bundledDetector = existsSync(fileURLToPath(bundledWeightsUrl('fashion-detector')));
  it.runIf(bundledDetector)('D-RISE with the bundled, trained fashion-detector by name: its detections and map are Node\'s', async () => {
    expect(scene, 'dataset-fashion-mnist provides the scene').not.toBeNull();
    const { page, errors } = demo ?? (await open('/web/?methods='));
    const errorsBefore = errors.length;
    const out = await page.evaluate(async () => {
      await customElements.whenDefined('saliency-view');
      const view = document.createElement('saliency-view');
      const attrs = { manual: '', model: 'fashion-detector', method: 'drise', src: '/__fixtures/scene.png', detection: '0', masks: '16', grid: '8', seed: '5' };
      for (const [k, v] of Object.entries(attrs)) view.setAttribute(k, v);
      document.body.append(view);
      const r = await view.run();
      const text = view.shadowRoot!.querySelector('.detections')?.textContent ?? '';
      return { map: Array.from(r.map), shape: r.shape, detections: r.detections!, text };
    });
    const model = await loadModel(gpu, 'fashion-detector');
    // The page reads the 8-bit PNG, so Node does too.
    const input = imageToTensorData(readImage(join(dir, 'scene.png')), { channels: 1, width: 96, height: 96, background: [0, 0, 0] });
    const x = tensor(gpu, input, [1, 1, 96, 96]);
    const [dets] = await detect(model, x, { threshold: 0.3 });
    expect(out.detections.length).toBe(dets!.length);
    out.detections.forEach((d, i) => d.box.forEach((v, k) => expect(Math.abs(v - dets![i]!.box[k]!)).toBeLessThan(1e-3)));
    // A trained detector, not random weights: its best detection is one of the scene's objects,
    // with that object's class.
    const best = dets![0]!;
    const label = best.scores.indexOf(Math.max(...best.scores));
    expect(scene!.boxes.some((box, k) => iou(best.box, box) >= 0.5 && scene!.labels[k] === label)).toBe(true);
    // The page names the classes it found.
    const top = dets![0]!.scores.indexOf(Math.max(...dets![0]!.scores));
    expect(out.text).toContain(model.classNames![top]!);
    const expected = await saliency.drise((images) => detect(model, images, { threshold: 0 }), x, { target: dets![0]!, masks: 16, gridSize: 8, seed: 5 });
    const want = await expected.read();
    expect(maxAbsDiff(out.map, want)).toBeLessThanOrEqual(TOLERANCE * Math.max(1, Math.max(...want.map(Math.abs))));
    expected.dispose();
    x.dispose();
    model.dispose();
    expect(errors.slice(errorsBefore)).toEqual([]);
  });

  it.runIf(existsSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')))('the page offers the first held-out detector scenes as samples', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const list = (await (await fetch(`${base}/samples/index.json`)).json()) as { kind: string; index: number; objects: number[]; file: string }[];
    const offered = list.filter((s) => s.kind === 'scene');
    expect(offered.map((s) => s.index)).toEqual([0, 1, 2, 3, 4]);
    const test = loadFashionMnist('test');
    for (const s of offered) {
      const expected = heldOutScene(test, s.index);
      expect(s.objects).toEqual(expected.labels);
      const png = decodeImage(new Uint8Array(await (await fetch(`${base}${s.file}`)).arrayBuffer()));
      expect([png.width, png.height]).toEqual([96, 96]);
      for (let p = 0; p < 96 * 96; p++) expect(Math.abs(png.data[p * 4]! - expected.image[p]! * 255)).toBeLessThanOrEqual(0.5);
    }
    expect((await fetch(`${base}/samples/scene-99.png`)).headers.get('content-type')).not.toBe('image/png');
  });

  it.skipIf(!existsSync(EMOTION))("model and image changed mid-run: no card shows the old model's classes; a failed card shows only its error", { timeout: 300_000 }, async () => {
    const methods = ['vanilla', 'gradCam', 'smoothGrad'];
    const bundled = existsSync(fileURLToPath(bundledWeightsUrl('fashion-vgg')));
    const { page, errors } = await open(`/web/?model=${bundled ? 'fashion-vgg' : '/__fixtures/vgg.safetensors'}&methods=${methods.join(',')}&samples=16&image=/__fixtures/item.png`);
    await page.waitForSelector('body[data-ready]');
    // In the page: at the first result, switch to the emotion model and the astronaut at once
    // (the other cards are still running or waiting), then watch every card until the end.
    await page.evaluate((fashion: string[]) => {
      const w = window as unknown as { __switched: boolean; __violations: string[] };
      w.__switched = false;
      w.__violations = [];
      const views = () => [...document.querySelectorAll('saliency-view')];
      const look = () => {
        for (const v of views()) {
          const root = v.shadowRoot!;
          const state = (v as HTMLElement & { state: string }).state;
          const classes = root.querySelector('ol.classes') as HTMLElement;
          const shownClasses = getComputedStyle(classes).display !== 'none' ? classes.textContent ?? '' : '';
          const canvasShown = getComputedStyle(root.querySelector('canvas.overlay')!).display !== 'none';
          const method = v.getAttribute('method');
          if (state !== 'done' && (canvasShown || shownClasses)) w.__violations.push(`${method}: ${state} but a map or classes are shown`);
          if (w.__switched) {
            const sub = root.querySelector('.sub')!.textContent ?? '';
            for (const name of fashion) {
              if (shownClasses.includes(name) || sub.includes(name)) w.__violations.push(`${method} (${state}) shows '${name}' of the old model`);
            }
          }
          const card = root.querySelector('.card') as HTMLElement;
          const stage = root.querySelector('.stage') as HTMLElement;
          if (card.getBoundingClientRect().width > 224 + 2 * 8 + 2 + 0.5) w.__violations.push(`${method} (${state}): the card widened to ${card.getBoundingClientRect().width}px`);
          if (getComputedStyle(stage).display !== 'none' && stage.getBoundingClientRect().width !== 224) w.__violations.push(`${method}: the map area is ${stage.getBoundingClientRect().width}px wide`);
        }
        const summary = document.getElementById('summary')!.textContent ?? '';
        const claimed = Number(/^(\d+)\//.exec(summary)?.[1] ?? 0);
        const done = views().filter((v) => (v as HTMLElement & { state: string }).state === 'done').length;
        if (claimed > done) w.__violations.push(`summary '${summary}' with ${done} cards done`);
      };
      document.addEventListener('saliency-result', () => {
        look();
        if (w.__switched) return;
        w.__switched = true;
        const model = document.getElementById('model') as HTMLSelectElement;
        model.value = '/human-models/emotion.json';
        model.dispatchEvent(new Event('change'));
        const sample = document.getElementById('sample') as HTMLSelectElement;
        sample.value = '/assets/astronaut.png';
        sample.dispatchEvent(new Event('change'));
        look();
      });
      setInterval(look, 15);
    }, [...FASHION_CLASSES]);
    const events = await waitForEvents(page, methods, 240_000, 64 * 64);
    const state = await page.evaluate(() => ({
      switched: (window as unknown as { __switched: boolean }).__switched,
      violations: (window as unknown as { __violations: string[] }).__violations,
      summary: document.getElementById('summary')!.textContent,
      classes: [...document.querySelectorAll('saliency-view')].map((v) => v.shadowRoot!.querySelector('ol.classes')!.textContent),
    }));
    expect(state.switched).toBe(true);
    expect([...new Set(state.violations)]).toEqual([]);
    expect(state.summary).toMatch(/^3\/3 done/);
    const emotions = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];
    for (const text of state.classes) expect(emotions.some((e) => text!.includes(e)), text!).toBe(true);
    // The runs for the old inputs ended as cancelled or replaced, never as results for the new ones.
    expect(events.filter((e) => e.type === 'saliency-result' && e.input!.length === 64 * 64).length).toBeGreaterThanOrEqual(3);

    // A target the model does not have: every card shows only its error, no map and no classes.
    await page.evaluate(() => {
      const target = document.getElementById('target') as HTMLInputElement;
      target.value = '42';
      target.dispatchEvent(new Event('change'));
    });
    await page.waitForFunction(() => [...document.querySelectorAll('saliency-view')].every((v) => (v as HTMLElement & { state: string }).state === 'failed'), { timeout: 60_000 });
    const failed = await page.evaluate(() =>
      [...document.querySelectorAll('saliency-view')].map((v) => {
        const root = v.shadowRoot!;
        const shown = (sel: string) => getComputedStyle(root.querySelector(sel)!).display !== 'none';
        return {
          stage: shown('.stage'),
          classes: shown('ol.classes'),
          bar: shown('.bar'),
          message: root.querySelector('.message')!.textContent,
          width: root.querySelector('.card')!.getBoundingClientRect().width,
          summary: document.getElementById('summary')!.textContent,
        };
      }),
    );
    for (const f of failed) {
      expect(f).toMatchObject({ stage: false, classes: false, bar: false });
      expect(f.message).toMatch(/target 42 is out of range: model 'emotion' has 7 classes/);
      expect(f.width).toBeLessThanOrEqual(224 + 2 * 8 + 2 + 0.5);
      expect(f.summary).toBe('0/3 done · 3 failed');
    }
    expect(errors).toEqual([]);
    await page.close();
  });

  it.skipIf(!existsSync(EMOTION))('a one-output (sigmoid) model lists both classes and explains the predicted one, as the CLI does', async () => {
    const { page, errors } = await open('/web/?methods=');
    const out = await page.evaluate(async () => {
      await customElements.whenDefined('saliency-view');
      const make = (target: string) => {
        const v = document.createElement('saliency-view');
        v.setAttribute('manual', '');
        v.setAttribute('model', '/human-models/antispoof.json');
        v.setAttribute('method', 'vanilla');
        v.setAttribute('src', '/assets/astronaut.png');
        v.setAttribute('crop', '170,40,120,120');
        v.setAttribute('target', target);
        document.body.append(v);
        return v;
      };
      const top = await make('top').run();
      const own = await make('0').run();
      const sub = document.querySelector('saliency-view')!.shadowRoot!.querySelector('.sub')!.textContent;
      return { top: { target: top.target, classes: top.classes, map: Array.from(top.map) }, own: { target: own.target, map: Array.from(own.map) }, sub };
    });
    // human's antispoof says 37.2% "real face" for this face (the CLI's figure): the other side wins.
    expect(out.top.classes.map((c) => c.name)).toEqual(['spoof', 'real face']);
    expect(out.top.classes[1]!.probability).toBeCloseTo(0.372, 3);
    expect(out.top.target).toBe(1);
    expect(out.sub).toBe('spoof');
    expect(out.own.target).toBe(0);
    // The vanilla gradient of −z is minus that of z.
    expect(maxAbsDiff(out.top.map, out.own.map.map((v) => -v))).toBeLessThanOrEqual(1e-6 * Math.max(...out.own.map.map(Math.abs)));
    expect(Math.max(...out.own.map.map(Math.abs))).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("with the AUC box checked, shows each map's deletion and insertion AUC under it, as Node computes them", { timeout: 240_000 }, async () => {
    const methods = ['vanilla', 'gradCam'];
    const { page, errors } = await open(`/web/?model=/__fixtures/vgg.safetensors&methods=${methods.join(',')}&image=/__fixtures/item.png&auc=1`);
    await page.waitForSelector('body[data-ready]');
    const events = await waitForEvents(page, methods);
    await page.waitForFunction(() => [...document.querySelectorAll('figcaption.auc')].filter((c) => (c as HTMLElement).dataset.insertion).length === 2, { timeout: 120_000, polling: 200 });
    const captions = await page.evaluate(() =>
      [...document.querySelectorAll('figure')].map((f) => {
        const c = f.querySelector('figcaption.auc') as HTMLElement;
        return { method: f.querySelector('saliency-view')!.getAttribute('method')!, text: c.textContent!, deletion: Number(c.dataset.deletion), insertion: Number(c.dataset.insertion) };
      }),
    );
    const model = modelFromSafetensors(gpu, vggBytes);
    for (const method of methods) {
      const r = events.find((e) => e.type === 'saliency-result' && e.method === method)!;
      const caption = captions.find((c) => c.method === method)!;
      expect(caption.text).toMatch(/^deletion AUC \d\.\d{3} ↓ · insertion AUC \d\.\d{3} ↑$/);
      // The same map and input, measured in Node.
      const x = tensor(gpu, r.input!, [1, 1, 28, 28]);
      const map = { data: Float32Array.from(r.map!), shape: r.shape! };
      const options = { target: r.target!, kind: method === 'gradCam' ? ('cam' as const) : ('attribution' as const) };
      const [del] = await saliency.metrics.deletion(model, x, map, options);
      const [ins] = await saliency.metrics.insertion(model, x, map, options);
      x.dispose();
      expect(Math.abs(caption.deletion - del!.auc)).toBeLessThan(TOLERANCE);
      expect(Math.abs(caption.insertion - ins!.auc)).toBeLessThan(TOLERANCE);
    }
    model.dispose();
    // Unchecked: the captions go.
    await page.click('#auc');
    expect(await page.evaluate(() => [...document.querySelectorAll('figcaption.auc')].map((c) => c.textContent))).toEqual(['', '']);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('cancels SmoothGrad, and says clearly when the model cannot be loaded', async () => {
    const { page } = demo ?? (await open('/web/?methods='));
    const out = await page.evaluate(async () => {
      await customElements.whenDefined('saliency-view');
      const make = (model: string, method: string, extra: Record<string, string> = {}) => {
        const v = document.createElement('saliency-view');
        v.setAttribute('manual', '');
        v.setAttribute('model', model);
        v.setAttribute('method', method);
        v.setAttribute('src', '/__fixtures/item.png');
        for (const [k, val] of Object.entries(extra)) v.setAttribute(k, val);
        document.body.append(v);
        return v;
      };
      const sg = make('/__fixtures/vgg.safetensors', 'smoothGrad', { samples: '4000' });
      sg.addEventListener('saliency-progress', (e) => {
        if (e.detail.done > 0) (sg.shadowRoot!.querySelector('button.cancel') as HTMLButtonElement).click();
      });
      const cancelled = await sg.run().then(
        () => 'finished',
        (e: Error) => e.name + ': ' + e.message,
      );
      const status = sg.shadowRoot!.querySelector('.status')!.textContent;
      const missing = make('/__fixtures/missing.safetensors', 'gradCam');
      const failed = await missing.run().then(
        () => 'finished',
        (e: Error) => e.message,
      );
      const shown = missing.shadowRoot!.querySelector('.message')!.textContent;
      const bad = make('fashion-nothing', 'gradCam');
      const unknown = await bad.run().then(() => 'finished', (e: Error) => e.message);
      return { cancelled, status, failed, shown, unknown };
    });
    expect(out.cancelled).toMatch(/CancelledError: smoothGrad: cancelled/);
    expect(out.status).toBe('cancelled');
    expect(out.failed).toMatch(/missing\.safetensors: HTTP 404/);
    expect(out.shown).toBe(out.failed);
    expect(out.unknown).toMatch(/neither a bundled model \(fashion-vgg, fashion-gap, fashion-detector\) nor a URL ending in/);
    await page.close();
  });

  it('says so in the page when WebGPU is missing', async () => {
    const { page, errors } = await open('/web/?model=/__fixtures/vgg.safetensors&methods=gradCam&image=/__fixtures/item.png', () => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
    });
    await page.waitForFunction(() => window.__events.some((e) => e.type === 'saliency-error'), { timeout: 30_000 });
    const text = await page.evaluate(() => ({
      banner: document.getElementById('nogpu')!.textContent,
      view: document.querySelector('saliency-view')!.shadowRoot!.querySelector('.message')!.textContent,
    }));
    expect(text.banner).toMatch(/needs WebGPU/);
    expect(text.view).toMatch(/WebGPU is not available/);
    expect(errors).toEqual([]);
    await page.close();
  });
});
