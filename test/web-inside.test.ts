/**
 * The demo page's "Inside the network" view (web/inside/) in headless Chromium, against the trace
 * of a Node run of the same model on the same PNG: the activations, gradients, masks, switches,
 * Grad-CAM weights and maps it draws, the steps it walks through (buttons and keys), the URL that
 * restores it, the sanity check's randomised map, and a console free of errors.
 *
 * The page's numbers come from its 'inside-render' event (what it drew, by the canvases' data-map
 * names); the masks and one map are also read back from the canvases' pixels. The Node side reads
 * the library's traces directly, not through web/inside/trace-data.ts.
 *
 * The model is the bundled, trained fashion-vgg (28×28), so the test is quick.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebServer, type WebServer } from '../scripts/web.mjs';
import { noGrad } from '../src/autodiff/tape.js';
import type { TraceEntry } from '../src/autodiff/trace.js';
import { FASHION_MNIST_DIR, readIdx } from '../src/nets/idx.js';
import type { Model } from '../src/nets/model.js';
import { loadModel } from '../src/nets/zoo.js';
import { initGpu, type Gpu } from '../src/runtime/gpu.js';
import { tensor, type Tensor } from '../src/runtime/tensor.js';
import { imageToTensorData, readImage, writePng } from '../src/saliency/image.js';
import * as saliency from '../src/saliency/index.js';
import type { MethodTrace } from '../src/saliency/trace.js';
import type { RgbaImage } from '../src/saliency/colormaps.js';
import { channelImage, gridLayout, planeDims, readMask, switchTargets, tileAt } from '../web/inside/draw.js';
import { clearInsideState, readInsideState, writeInsideState } from '../web/inside/state.js';
import { classify, traceGradCam, traceInside } from '../web/inside/trace-data.js';
import { CHROMIUM, CHROMIUM_FLAGS, haveChromium } from './chromium.js';

if (!haveChromium) console.warn(`test/web-inside.test.ts: SKIPPED the browser part: ${CHROMIUM} is missing; install it with 'apt-get install chromium'`);

/** Agreement of the page (SwiftShader) and Node (lavapipe), relative to the largest value. */
const TOLERANCE = 1e-4;

interface Drawn {
  shape: number[];
  values: number[];
}
interface Snapshot {
  status: string;
  pending: boolean;
  message: string;
  state: { method: string; layer: string | null; channel: number | null; step: number; randomise: number; seed: number };
  target: number | null;
  pool: string | null;
  camLayer: string | null;
  step: { index: number; count: number; pass: string; op: string; label: string; rules: string } | null;
}

declare global {
  interface Window {
    __inside: (Snapshot & { drawn: Record<string, { shape: number[]; values: ArrayLike<number> }> }) | undefined;
    __renders: number;
  }
}

function close(page: ArrayLike<number>, node: ArrayLike<number>, what: string): void {
  expect(page.length, `${what}: length`).toBe(node.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < node.length; i++) {
    scale = Math.max(scale, Math.abs(node[i]!));
    worst = Math.max(worst, Math.abs(page[i]! - node[i]!));
  }
  expect(worst, `${what}: max |page − node| (max |node| ${scale})`).toBeLessThanOrEqual(TOLERANCE * Math.max(1, scale));
}

/** Masks agree except, at most, where the value is within float noise of 0 (its sign may differ between GPUs). */
function sameMask(page: ArrayLike<number>, values: ArrayLike<number>, what: string): void {
  expect(page.length, `${what}: length`).toBe(values.length);
  let scale = 0;
  for (let i = 0; i < values.length; i++) scale = Math.max(scale, Math.abs(values[i]!));
  const wrong: number[] = [];
  for (let i = 0; i < values.length; i++) if (page[i]! !== (values[i]! > 0 ? 1 : 0) && Math.abs(values[i]!) > 1e-6 * scale) wrong.push(i);
  expect(wrong, `${what}: elements whose mask differs`).toEqual([]);
}

describe('the view’s state in the URL, and its pictures (no browser)', () => {
  it('writes and reads back every field; drops values that do not parse', () => {
    const params = new URLSearchParams('model=fashion-vgg&image=%2Fa.png');
    writeInsideState(params, { method: 'deconvnet', layer: 'relu3', channel: 5, step: 4, randomise: 2, seed: 7 });
    expect(params.get('view')).toBe('inside');
    expect(params.get('model')).toBe('fashion-vgg'); // the form's parameters stay
    expect(readInsideState(new URLSearchParams(params.toString()))).toEqual({ method: 'deconvnet', layer: 'relu3', channel: 5, step: 4, randomise: 2, seed: 7 });
    writeInsideState(params, { method: 'vanilla', layer: null, channel: null, step: 1, randomise: 0, seed: 0 });
    expect([...params.keys()].sort()).toEqual(['image', 'method', 'model', 'view']); // defaults left out
    clearInsideState(params);
    expect([...params.keys()].sort()).toEqual(['image', 'model']);
    const hostile = readInsideState(new URLSearchParams('method=drise&layer=' + 'x'.repeat(300) + '&channel=-1&step=0&randomise=1e3&seed=abc'));
    expect(hostile).toEqual({ method: 'guidedBackprop', layer: null, channel: null, step: 1, randomise: 0, seed: 0 });
    expect(readInsideState(new URLSearchParams('method=__proto__')).method).toBe('guidedBackprop');
  });

  it('lays out channels as a grid and finds the channel under a pixel', () => {
    const d = planeDims([1, 5, 3, 2]); // 5 channels of 3×2: 3 columns, 2 rows, 1 px apart
    expect(d).toEqual({ channels: 5, h: 3, w: 2, valid: 6 });
    expect(gridLayout(d)).toEqual({ cols: 3, rows: 2, width: 8, height: 7 });
    expect([tileAt(d, 0, 0), tileAt(d, 2, 0), tileAt(d, 3, 2), tileAt(d, 7, 6), tileAt(d, 4, 5), tileAt(d, 2, 3)]).toEqual([0, null, 1, null, 4, null]);
    expect(planeDims([1, 130])).toEqual({ channels: 1, h: 3, w: 64, valid: 130 });
    // Three max-pool windows pointing at input positions 0, 0 and 5 of a 2×3 plane.
    expect([...switchTargets([0, 0, 5, -1], 6)]).toEqual([1, 0, 0, 0, 0, 1]);
  });
});

describe('trace-data in Node', () => {
  it('reads the traces back and leaves no GPU memory behind', async () => {
    const gpu = await initGpu();
    try {
      const model = await loadModel(gpu, 'fashion-vgg');
      const x = tensor(gpu, new Float32Array(784).map((_, p) => ((p * 37) % 101) / 100), [1, 1, 28, 28]);
      await gpu.sync();
      const start = gpu.memory();
      const { target, classes } = await classify(model, x, 3);
      expect(target).toBe(3);
      const data = await traceInside(model, x, { method: 'gradCam', target, classes });
      const cam = await traceGradCam(model, x, { layer: 'relu2', target });
      await gpu.sync();
      expect(gpu.memory().tensors).toBe(start.tensors);
      expect(gpu.memory().inUse).toBe(start.inUse);
      expect(data.layers.map((l) => l.label)).toEqual(['conv1+relu1', 'conv2+relu2', 'pool1', 'conv3+relu3', 'conv4+relu4', 'pool2', 'flatten', 'fc1+relu5', 'dropout', 'fc2']);
      expect([...data.pools.keys()]).toEqual(['pool2', 'pool1']);
      expect(data.method.passes).toEqual(['forward', 'backward (ordinary rule, down to relu4)']);
      // Grad-CAM's map is ReLU(Σ_k α_k A^k) with α from the trace's ∂S/∂A.
      cam.sum.values.forEach((v, p) => expect(Math.abs(Math.max(0, v) - cam.map.values[p]!)).toBeLessThan(1e-5));
      x.dispose();
      model.dispose();
    } finally {
      gpu.destroy();
    }
  });
});

describe.skipIf(!haveChromium)('the "Inside the network" view in headless Chromium', () => {
  let gpu: Gpu;
  let dir: string;
  let server: WebServer;
  let browser: Browser;
  let model: Model;
  let x: Tensor;
  let top: number;
  const errors: string[] = [];
  /** Node's traces with tensors, by method. */
  const traces = new Map<string, MethodTrace>();
  const LAYER = 'relu3';
  const CHANNEL = 5;

  beforeAll(async () => {
    gpu = await initGpu();
    dir = mkdtempSync(join(tmpdir(), 'saliency-inside-'));
    // A 28×28 grey PNG: the first Fashion-MNIST test image (an ankle boot), or a drawn shape.
    const images = join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz');
    const grey = existsSync(images)
      ? readIdx(images).data.subarray(0, 784)
      : Uint8Array.from({ length: 784 }, (_, p) => (Math.hypot((p % 28) - 14, Math.floor(p / 28) - 12) < 9 ? 200 + (p % 7) * 8 : 10));
    const pixels = new Uint8ClampedArray(784 * 4);
    grey.forEach((v, p) => pixels.set([v, v, v, 255], 4 * p));
    writePng(join(dir, 'item.png'), { width: 28, height: 28, data: pixels });

    model = await loadModel(gpu, 'fashion-vgg');
    x = tensor(gpu, imageToTensorData(readImage(join(dir, 'item.png')), { channels: 1, width: 28, height: 28, background: [0, 0, 0] }), [1, 1, 28, 28]);
    const out = await noGrad(gpu, () => model.forward(x, { logits: true }));
    const logits = await out.read();
    out.dispose();
    top = logits.indexOf(Math.max(...logits));
    for (const method of ['vanilla', 'guidedBackprop', 'deconvnet'] as const) {
      const { result, trace } = await saliency.runMethod(method, model, x, { target: top, trace: 'tensors' });
      result.dispose();
      traces.set(method, trace);
    }

    server = await startWebServer({ port: 0, strictPort: true, logLevel: 'silent', mounts: { '/__fixtures/': dir }, cacheDir: join(dir, 'vite-cache') });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  });

  afterAll(async () => {
    for (const t of traces.values()) t.dispose();
    x?.dispose();
    model?.dispose();
    await browser?.close();
    await server?.close();
    gpu?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function open(query: string): Promise<Page> {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') errors.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${(e as Error).message}`));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    await page.setViewport({ width: 1300, height: 900 });
    await page.evaluateOnNewDocument(() => {
      window.__renders = 0;
      document.addEventListener('inside-render', (e) => {
        window.__inside = (e as CustomEvent).detail;
        window.__renders++;
      });
    });
    await page.goto(`http://127.0.0.1:${server.port}/web/?${query}`, { waitUntil: 'load' });
    return page;
  }

  /** Waits until the view has drawn everything (nothing pending) after render number `after`. */
  async function settled(page: Page, after = 0): Promise<Snapshot> {
    await page.waitForFunction((n: number) => window.__renders > n && window.__inside && window.__inside.status !== 'computing' && window.__inside.status !== 'waiting' && !window.__inside.pending, { timeout: 180_000, polling: 100 }, after);
    const s = await page.evaluate(() => {
      const { drawn: _drawn, ...rest } = window.__inside!;
      return rest;
    });
    expect(s.message).toBe('');
    expect(s.status).toBe('ready');
    return s;
  }

  const renders = (page: Page) => page.evaluate(() => window.__renders);
  const drawn = (page: Page, name: string) =>
    page.evaluate((n: string) => {
      const d = window.__inside!.drawn[n];
      return d ? { shape: [...d.shape], values: Array.from(d.values) } : null;
    }, name) as Promise<Drawn | null>;
  /** The RGBA pixels of the canvas named `name`. */
  const pixels = async (page: Page, name: string): Promise<RgbaImage> => {
    const p = await page.evaluate((n: string) => {
      const c = document.querySelector(`canvas[data-map="${n}"]`) as HTMLCanvasElement;
      return { width: c.width, height: c.height, data: Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data) };
    }, name);
    return { ...p, data: Uint8ClampedArray.from(p.data) };
  };

  /** The first backward entry of `layer` in `method`'s first backward pass (the gradient arriving at its output). */
  const backwardAt = (method: string, layer: string): TraceEntry => traces.get(method)!.backward[0]!.entries.find((e) => e.layer === layer)!;
  const channelOf = async (t: Tensor, c: number) => {
    const v = await t.read();
    const per = t.shape[2]! * t.shape[3]!;
    return v.subarray(c * per, (c + 1) * per);
  };

  let shared: string;

  it('draws the Node trace’s activations, gradients, masks, switches and Grad-CAM weights', { timeout: 300_000 }, async () => {
    const page = await open(`view=inside&model=fashion-vgg&image=/__fixtures/item.png&method=guidedBackprop&layer=${LAYER}&channel=${CHANNEL}`);
    const s = await settled(page);
    expect(s.target).toBe(top);
    expect(s.state).toMatchObject({ method: 'guidedBackprop', layer: LAYER, channel: CHANNEL, step: 1 });
    expect(await page.evaluate(() => document.getElementById('inside')!.hidden)).toBe(false);
    expect(await page.evaluate(() => document.querySelectorAll('saliency-view').length)).toBe(0); // the other view does not run meanwhile

    // Layers: relu3's output, every channel, as the forward trace holds it.
    const relu3 = traces.get('vanilla')!.forward[0]!.entries.filter((e) => e.layer === LAYER).at(-1)!;
    const activation = (await drawn(page, 'activation'))!;
    expect(activation.shape).toEqual([1, 32, 14, 14]);
    close(activation.values, await relu3.tensors!.output!.read(), 'activation');

    // Gradients: for each rule, g arriving, after the rule, and the two masks (read from the canvases).
    const dims = planeDims([1, 32, 14, 14]);
    for (const [rule, method] of [
      ['ordinary', 'vanilla'],
      ['guided', 'guidedBackprop'],
      ['deconv', 'deconvnet'],
    ] as const) {
      const e = backwardAt(method, LAYER);
      const r = e.rules[0]!;
      expect(r.kind === 'activation' && r.rule).toBe(rule);
      if (r.kind !== 'activation') continue;
      const g = await channelOf(e.tensors!.incoming!, CHANNEL);
      const y = await channelOf(r.tensors!.y, CHANNEL);
      const pageG = (await drawn(page, `gradients.${rule}.g`))!.values;
      const pageAfter = (await drawn(page, `gradients.${rule}.after`))!.values;
      close(pageG, g, `${rule}: g`);
      close(pageAfter, await channelOf(r.tensors!.after, CHANNEL), `${rule}: after`);
      const xMask = readMask(await pixels(page, `gradients.${rule}.x>0`));
      sameMask(xMask, y, `${rule}: 1[x > 0] as drawn`);
      // Each rule keeps the terms its masks say: ordinary 1[x > 0], deconv 1[g > 0], guided both.
      const keep = (i: number) => (rule === 'deconv' || xMask[i] === 1) && (rule === 'ordinary' || pageG[i]! > 0);
      expect(pageAfter.every((v, i) => v === (keep(i) ? pageG[i] : 0)), `${rule}: g_in = ${rule}(g) on the drawn values`).toBe(true);
      sameMask(readMask(await pixels(page, `gradients.${rule}.g>0`)), g, `${rule}: 1[g > 0] as drawn`);
      // The map's pixels are its values on the diverging scale.
      const shown = await pixels(page, `gradients.${rule}.g`);
      const expected = channelImage({ shape: [1, 32, 14, 14], values: await e.tensors!.incoming!.read() }, CHANNEL);
      expect([shown.width, shown.height]).toEqual([dims.w, dims.h]);
      expect(Math.max(...Array.from(shown.data, (v, i) => Math.abs(v - expected.data[i]!)))).toBeLessThanOrEqual(2);
    }

    // Pooling: the max pool after relu3 (pool2); its switches as DeconvNet's backward used them.
    expect(s.pool).toBe('pool2');
    const pool = backwardAt('deconvnet', 'pool2');
    const sw = pool.rules[0]!;
    expect(sw.kind).toBe('switches');
    if (sw.kind === 'switches') {
      const all = await sw.tensors!.switches.readInt32();
      const mine = all.subarray(CHANNEL * 49, (CHANNEL + 1) * 49);
      expect((await drawn(page, 'pool.switch-index'))!.values).toEqual([...mine]);
      expect([...readMask(await pixels(page, 'pool.switches'))]).toEqual([...switchTargets(mine, 196)]);
    }
    close((await drawn(page, 'pool.g'))!.values, await channelOf(pool.tensors!.incoming!, CHANNEL), 'pool: g at the output');
    close((await drawn(page, 'pool.unpooled'))!.values, await channelOf(pool.tensors!.outgoing![0]!, CHANNEL), 'pool: unpooled');

    // Grad-CAM at relu3: α_k from Node's own Grad-CAM trace, and Node's map.
    expect(s.camLayer).toBe(LAYER);
    const cam = await saliency.gradCam(model, x, { target: top, layer: LAYER, upsample: 'none', trace: 'tensors' });
    const dA = await cam.trace.backward[0]!.entries.find((e) => e.layer === LAYER)!.tensors!.incoming!.read();
    const alpha = Array.from({ length: 32 }, (_, k) => dA.subarray(k * 196, (k + 1) * 196).reduce((a, b) => a + b, 0) / 196);
    close((await drawn(page, 'gradcam.alpha'))!.values, alpha, 'α');
    close((await drawn(page, 'gradcam.map'))!.values, await cam.result.read(), 'Grad-CAM map');
    cam.result.dispose();
    cam.trace.dispose();

    // Step 1 of guided backprop: the seed, 1 for the target class, arriving at fc2.
    expect(s.step).toMatchObject({ index: 1, op: 'linear', label: 'fc2' });
    expect(s.step!.count).toBe(traces.get('guidedBackprop')!.backward[0]!.entries.length);
    close((await drawn(page, 'step.in'))!.values, await traces.get('guidedBackprop')!.backward[0]!.entries[0]!.tensors!.incoming!.read(), 'step 1 in');
    // docs/web.md's picture, refreshed only on request so that test runs leave the tree clean.
    if (process.env.UPDATE_SCREENSHOT) await (await page.$('#inside'))!.screenshot({ path: fileURLToPath(new URL('../docs/images/inside-the-network.png', import.meta.url)) });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('steps with the buttons and the arrow keys, and the URL follows', { timeout: 300_000 }, async () => {
    const page = await open(`view=inside&model=fashion-vgg&image=/__fixtures/item.png&method=guidedBackprop`);
    let s = await settled(page);
    const entries = traces.get('guidedBackprop')!.backward[0]!.entries;
    const expectStep = async (index: number) => {
      s = await settled(page, await renders(page) - 1);
      const e = entries[index - 1]!;
      expect(s.step).toMatchObject({ index, op: e.op, label: [...e.fusedLayers, e.layer].join('+') });
      expect(new URL(page.url()).searchParams.get('step')).toBe(index === 1 ? null : String(index));
      close((await drawn(page, 'step.in'))!.values, await e.tensors!.incoming!.read(), `step ${index} in`);
      const out = e.tensors!.outgoing!.findIndex((t) => t !== null);
      if (out >= 0) close((await drawn(page, `step.out.${out}`))!.values, await e.tensors!.outgoing![out]!.read(), `step ${index} out`);
    };
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expectStep(4);
    await page.click('#inside-next');
    await expectStep(5); // pool2: the switches rule
    expect(s.step!.rules).toBe('switches');
    expect(await drawn(page, 'step.switches')).not.toBeNull();
    await page.click('#inside-prev');
    await expectStep(4);
    await page.keyboard.press('End');
    await expectStep(entries.length);
    expect(await page.$eval('#inside-next', (b) => (b as HTMLButtonElement).disabled)).toBe(true);
    await page.keyboard.press('ArrowRight'); // past the end: stays
    expect((await page.evaluate(() => window.__inside!.step!.index))).toBe(entries.length);
    await page.keyboard.press('Home');
    await expectStep(1);
    // Picking a layer and a channel goes into the URL too.
    await page.click('button[data-layer="relu2"]');
    s = await settled(page, await renders(page) - 1);
    expect(s.state.layer).toBe('relu2');
    await page.keyboard.press('ArrowRight');
    await expectStep(2);
    shared = page.url();
    expect(new URL(shared).searchParams.get('layer')).toBe('relu2');
    expect(new URL(shared).searchParams.get('channel')).toBeNull(); // the default (most active) channel
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a shared link restores the view, the sanity check included; the randomised map is Node’s', { timeout: 300_000 }, async () => {
    const url = new URL(shared);
    url.searchParams.set('channel', '3');
    url.searchParams.set('randomise', '1');
    url.searchParams.set('seed', '4');
    const page = await open(url.search.slice(1));
    const s = await settled(page);
    expect(s.state).toEqual({ method: 'guidedBackprop', layer: 'relu2', channel: 3, step: 2, randomise: 1, seed: 4 });
    expect(s.step).toMatchObject({ index: 2, label: 'dropout' });
    expect(await page.$eval('#inside-randomise', (i) => (i as HTMLInputElement).value)).toBe('1');
    expect(new URL(page.url()).searchParams.toString()).toBe(url.searchParams.toString());
    const relu2 = backwardAt('guidedBackprop', 'relu2');
    close((await drawn(page, 'gradients.guided.g'))!.values, await channelOf(relu2.tensors!.incoming!, 3), 'restored: g at relu2, channel 3');
    // The sanity check: the top layer (fc2) re-initialised from seed 4, on a copy; the model is untouched.
    const copy = await saliency.metrics.reinitialisedCopy(model, ['fc2'], { seed: 4 });
    const randomised = await saliency.guidedBackprop(copy, x, { target: top });
    close((await drawn(page, 'sanity.randomised'))!.values, await randomised.read(), 'randomised map');
    randomised.dispose();
    copy.dispose();
    const trained = await saliency.guidedBackprop(model, x, { target: top });
    close((await drawn(page, 'sanity.trained'))!.values, await trained.read(), 'trained map');
    trained.dispose();
    // Back to the methods side by side: the view's parameters leave the URL, the methods run.
    await page.click('#view-methods');
    expect(new URL(page.url()).searchParams.get('view')).toBeNull();
    expect(new URL(page.url()).searchParams.get('step')).toBeNull();
    expect(await page.evaluate(() => document.getElementById('inside')!.hidden)).toBe(true);
    await page.waitForFunction(() => document.querySelectorAll('saliency-view').length > 0, { timeout: 30_000 });
    expect(errors).toEqual([]);
    await page.close();
  });
});
