/**
 * `<saliency-view>`: one saliency map of one image, computed on the visitor's GPU and drawn over
 * the image, with a colour bar and the predicted classes. Plain DOM, no framework.
 *
 *   <script type="module" src="…/web/index.js"></script>
 *   <saliency-view model="fashion-vgg" src="boot.png" method="gradCam"></saliency-view>
 *
 * Attributes: model (a bundled name, or a URL of a .safetensors / model.json / .onnx file),
 * labels ('imagenet', or the URL of a .txt / .json list of class names), normalize (ONNX models:
 * 'imagenet' or 'm,m,m/s,s,s', per-channel mean and std applied to pixels in [0, 1]), src (image
 * URL), method (vanilla, deconvnet, guidedBackprop, gradTimesInput, smoothGrad, cam, gradCam,
 * guidedGradCam, drise), target ('top' or a class index), layer (Grad-CAM's layer), crop
 * ('x,y,width,height' in image pixels: explain that region, e.g. a face), samples,
 * noise-level, seed (SmoothGrad; seed also D-RISE's), detection, masks, grid, threshold (D-RISE:
 * which detection, how many masks, grid cells per side, detection threshold), size (pixels),
 * colormap, opacity, top (classes listed), manual (no automatic runs: call run()), precompile
 * ("on": compile the pipelines a method needs all at once before its first run; read at each run).
 *
 * Property `image`: an <img>, File/Blob, canvas, ImageBitmap, ImageData or URL; it takes
 * precedence over `src`. `run()` computes and resolves with the result; it also runs by itself when
 * the element is connected or an input changes, unless `manual` is set.
 *
 * Events (bubbling, composed): 'saliency-result' with `SaliencyResultDetail` (the raw map),
 * 'saliency-progress' with { method, done, total }, 'saliency-error' with { method, error, message }.
 *
 * The page's image → model input conversion is the library's `imageToTensorData` (the one the CLI
 * uses), on the image's own pixels as decoded without colour management, so a page and Node give
 * the same input for the same PNG.
 */
import { noGrad } from '../autodiff/tape.js';
import { Model } from '../nets/model.js';
import { detect, detectorGeometry } from '../nets/detector.js';
import { ArgumentError, CancelledError, NoGpuError } from '../runtime/errors.js';
import { tensor, type Tensor } from '../runtime/tensor.js';
import type { Detection } from '../saliency/drise.js';
import { METHODS, METHOD_NAMES, isMethodName, methodByName, runMethod, type ClassifierMethodName, type MethodName } from '../saliency/methods.js';
import { COLORMAPS, type ColormapName, type RgbaImage } from '../saliency/colormaps.js';
import { cropRgba, imageToTensorData, inputToRgba } from '../saliency/input.js';
import { DEFAULT_OPACITY, renderColorbar, renderOverlay } from '../saliency/render.js';
import { negatedOutput, otherClassName } from '../saliency/sigmoid.js';
import * as ops from '../autodiff/ops/index.js';
import { cachedLabels, cachedModel, sharedGpu, type ViewModel } from './models.js';
import { checkLabels } from '../nets/labels.js';
import { parseNormalization } from '../nets/normalization.js';

/** The methods, in the registry's order (src/saliency/methods.ts): every method, D-RISE included. */
export const VIEW_METHODS: readonly MethodName[] = METHOD_NAMES;
export type ViewMethod = MethodName;

/** Readable names for labels, from the registry. */
export const METHOD_LABELS: Readonly<Record<ViewMethod, string>> = Object.fromEntries(METHODS.map((m) => [m.name, m.label])) as Record<ViewMethod, string>;

/** See `SaliencyView.state`. */
export type ViewState = 'idle' | 'running' | 'done' | 'failed' | 'cancelled';

/** Anything the element can read pixels from. */
export type ImageInput = string | URL | Blob | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageBitmap | ImageData;

export interface ClassScore {
  index: number;
  name: string;
  probability: number;
}

/** The detail of a 'saliency-result' event, and what `run()` resolves with. */
export interface SaliencyResultDetail {
  method: ViewMethod;
  /** The explained class (for D-RISE: the explained detection's index). */
  target: number;
  /** The raw map, as the library returns it (not normalised). */
  map: Float32Array;
  /** [1, C, H, W]: the input's shape for gradient methods, [1, 1, H, W] for CAM, Grad-CAM and D-RISE. */
  shape: number[];
  /** The most probable classes, best first (D-RISE: the explained detection's class scores). */
  classes: ClassScore[];
  /** The model input the map explains, NCHW, values in [0, 1]. */
  input: Float32Array;
  inputShape: number[];
  /** D-RISE only: the detections on the clean image. */
  detections?: Detection[];
  /** Milliseconds of the method itself (after the model was loaded and the image converted). */
  ms: number;
  /** Where this run's time went. */
  timings: RunTimings;
}

/**
 * Milliseconds of each part of a run: opening WebGPU and reading the image; loading the model and
 * the labels (cached after their first use); compiling the GPU pipelines used for the first time, in the load
 * and in the method; and the method less that compiling (`ms` = the compiling in the method + `run`).
 */
export interface RunTimings {
  gpu: number;
  image: number;
  load: number;
  compile: number;
  run: number;
}

const ATTRIBUTES = [
  'model',
  'labels',
  'normalize',
  'src',
  'method',
  'target',
  'layer',
  'crop',
  'samples',
  'noise-level',
  'seed',
  'detection',
  'masks',
  'grid',
  'threshold',
  'size',
  'colormap',
  'opacity',
  'top',
  'manual',
] as const;

const STYLE = `
:host { display: inline-block; font: 13px/1.35 system-ui, sans-serif; color: #222; vertical-align: top; --size: 224px; }
.card { display: flex; flex-direction: column; gap: 6px; padding: 8px; border: 1px solid #ccd; border-radius: 6px; background: #fff; width: var(--size); overflow-wrap: anywhere; }
.title { font-weight: 600; }
.title small { font-weight: 400; color: #667; margin-left: 6px; }
.stage { position: relative; width: var(--size); height: var(--size); background: #eceef3; }
canvas.overlay { display: block; width: var(--size); height: var(--size); image-rendering: auto; }
.placeholder { display: none; position: absolute; inset: 0; align-items: center; justify-content: center; text-align: center; padding: 8px;
  color: #667; font-size: 12px; background: repeating-linear-gradient(45deg, #eceef3 0 8px, #e3e6ee 8px 16px); }
.card:not([data-state='done']) canvas.overlay, .card:not([data-state='done']) .bar, .card:not([data-state='done']) ol.classes { display: none; }
.card:not([data-state='done']) .placeholder { display: flex; }
.card[data-state='failed'] .stage, .card[data-state='failed'] .status, .card[data-state='failed'] .detections { display: none; }
.bar { display: flex; align-items: center; gap: 6px; font-size: 11px; color: #556; }
.bar canvas { flex: 1; height: 10px; min-width: 0; }
.status { min-height: 1.35em; color: #556; font-size: 12px; }
.message { display: none; padding: 6px 8px; border-radius: 4px; background: #fdecea; color: #8a1c12; white-space: pre-wrap; font-size: 12px; }
.message.shown { display: block; }
.progress { display: none; align-items: center; gap: 6px; }
.progress.shown { display: flex; }
.progress progress { flex: 1; }
ol.classes { margin: 0; padding: 0; list-style: none; }
ol.classes li { display: grid; grid-template-columns: minmax(0, 1fr) 3.5em; gap: 4px; position: relative; padding: 1px 4px; }
ol.classes li span:not(.p) { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
ol.classes li .fill { position: absolute; inset: 0 auto 0 0; background: #dde6f7; z-index: 0; }
ol.classes li span { position: relative; z-index: 1; }
ol.classes li .p { text-align: right; font-variant-numeric: tabular-nums; }
ol.classes li.target { font-weight: 600; }
.detections { display: flex; flex-wrap: wrap; gap: 4px; }
.detections button { font: inherit; font-size: 11px; padding: 1px 6px; cursor: pointer; }
.detections button.chosen { background: #e33; color: #fff; border-color: #a11; }
`;

function numberAttr(el: HTMLElement, name: string, fallback: number): number {
  const v = el.getAttribute(name);
  if (v === null || v.trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ArgumentError(`attribute ${name}="${v}" is not a number`);
  return n;
}

function intAttr(el: HTMLElement, name: string, fallback: number, min: number): number {
  const n = numberAttr(el, name, fallback);
  if (!Number.isInteger(n) || n < min) throw new ArgumentError(`attribute ${name}="${el.getAttribute(name)}" must be an integer ≥ ${min}`);
  return n;
}

function softmax(v: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < v.length; i++) m = Math.max(m, v[i]!);
  const e = Array.from(v, (z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((z) => z / s);
}

function topClasses(probs: readonly number[], names: readonly string[] | undefined, k: number): ClassScore[] {
  return probs
    .map((probability, index) => ({ index, name: names?.[index] ?? `class ${index}`, probability }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, k);
}

/** The pixels of an image source, as decoded (no colour-space conversion), 8-bit RGBA. */
export async function readPixels(source: ImageInput): Promise<RgbaImage> {
  if (typeof ImageData !== 'undefined' && source instanceof ImageData) {
    return { width: source.width, height: source.height, data: source.data };
  }
  let from: ImageBitmapSource;
  if (typeof source === 'string' || source instanceof URL) {
    const url = new URL(source.toString(), document.baseURI);
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new ArgumentError(`could not load the image ${url.href}: ${(e as Error).message}`);
    }
    if (!res.ok) throw new ArgumentError(`could not load the image ${url.href}: HTTP ${res.status}`);
    from = await res.blob();
  } else if (source instanceof HTMLImageElement) {
    if (!source.complete || source.naturalWidth === 0) {
      try {
        await source.decode();
      } catch {
        throw new ArgumentError(`the <img> ${source.src ? `(${source.src}) ` : ''}could not be loaded or decoded`);
      }
    }
    from = source;
  } else {
    from = source;
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(from, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new ArgumentError(`the image could not be decoded (${(e as Error).message}); use a PNG, JPEG, WebP or GIF`);
  }
  try {
    const { width, height } = bitmap;
    if (!width || !height) throw new ArgumentError('the image is empty (0 pixels)');
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new ArgumentError('this browser gave no 2D canvas to read the image pixels');
    ctx.drawImage(bitmap, 0, 0);
    let data: ImageData;
    try {
      data = ctx.getImageData(0, 0, width, height);
    } catch (e) {
      throw new ArgumentError(`the image's pixels cannot be read (${(e as Error).message}); a cross-origin image needs CORS`);
    }
    return { width, height, data: data.data };
  } finally {
    bitmap.close();
  }
}

/** The method settings each model has been precompiled for (SaliencyView.precompiles). */
const rehearsed = new WeakMap<ViewModel, Set<string>>();

const Base: typeof HTMLElement = typeof HTMLElement === 'undefined' ? (class {} as unknown as typeof HTMLElement) : HTMLElement;

export class SaliencyView extends Base {
  static get observedAttributes(): string[] {
    return [...ATTRIBUTES];
  }

  /** The result for the current inputs; null while it is computed, after a failure, or before a run. */
  result: SaliencyResultDetail | null = null;

  /**
   * Where the element stands for its current inputs: 'idle' (nothing to run yet), 'running',
   * 'done' (`result` is theirs), 'failed' (only the error is shown) or 'cancelled'. Nothing of an
   * earlier input's result is shown in any state but 'done'.
   */
  get state(): ViewState {
    return this.els.card.dataset.state as ViewState;
  }

  private imageSource: ImageInput | null = null;
  private controller: AbortController | null = null;
  private scheduled: ReturnType<typeof setTimeout> | null = null;
  private runCount = 0;
  private readonly els: {
    card: HTMLElement;
    placeholder: HTMLElement;
    title: HTMLElement;
    sub: HTMLElement;
    overlay: HTMLCanvasElement;
    bar: HTMLCanvasElement;
    barRow: HTMLElement;
    status: HTMLElement;
    message: HTMLElement;
    progressRow: HTMLElement;
    progress: HTMLProgressElement;
    progressText: HTMLElement;
    cancel: HTMLButtonElement;
    classes: HTMLOListElement;
    detections: HTMLElement;
  };

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = `<style>${STYLE}</style>
<div class="card" part="card" data-state="idle">
  <div class="title" part="title"><span class="name"></span><small class="sub"></small></div>
  <div class="stage"><canvas class="overlay" part="overlay" width="224" height="224"></canvas><div class="placeholder" part="placeholder">no map yet</div></div>
  <div class="bar" part="colorbar"><span>low</span><canvas width="224" height="10"></canvas><span>high</span></div>
  <div class="progress" part="progress"><progress max="1" value="0"></progress><span class="ptext"></span><button type="button" class="cancel">Cancel</button></div>
  <div class="status" part="status" role="status"></div>
  <div class="message" part="message" role="alert"></div>
  <div class="detections" part="detections"></div>
  <ol class="classes" part="classes"></ol>
</div>`;
    const q = <T extends Element>(s: string) => root.querySelector(s) as T;
    this.els = {
      card: q('.card'),
      placeholder: q('.placeholder'),
      title: q('.title .name'),
      sub: q('.title .sub'),
      overlay: q('canvas.overlay'),
      bar: q('.bar canvas'),
      barRow: q('.bar'),
      status: q('.status'),
      message: q('.message'),
      progressRow: q('.progress'),
      progress: q('progress'),
      progressText: q('.ptext'),
      cancel: q('button.cancel'),
      classes: q('ol.classes'),
      detections: q('.detections'),
    };
    this.els.cancel.addEventListener('click', () => this.cancel());
  }

  // ---------------------------------------------------------------------------------------------
  // Properties mirroring the attributes

  get model(): string {
    return this.getAttribute('model') ?? '';
  }
  set model(v: string) {
    this.setAttribute('model', v);
  }
  get src(): string {
    return this.getAttribute('src') ?? '';
  }
  set src(v: string) {
    this.setAttribute('src', v);
  }
  get method(): ViewMethod {
    return (this.getAttribute('method') ?? 'gradCam') as ViewMethod;
  }
  set method(v: ViewMethod) {
    this.setAttribute('method', v);
  }
  get target(): string {
    return this.getAttribute('target') ?? 'top';
  }
  set target(v: string | number) {
    this.setAttribute('target', String(v));
  }
  get layer(): string {
    return this.getAttribute('layer') ?? '';
  }
  set layer(v: string) {
    if (v) this.setAttribute('layer', v);
    else this.removeAttribute('layer');
  }

  /** The image to explain; takes precedence over `src`. */
  get image(): ImageInput | null {
    return this.imageSource;
  }
  set image(v: ImageInput | null) {
    this.imageSource = v;
    this.invalidate();
    this.schedule();
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  connectedCallback(): void {
    this.els.title.textContent = METHOD_LABELS[this.method] ?? this.method;
    this.drawColorbar();
    this.schedule();
  }

  disconnectedCallback(): void {
    if (this.scheduled !== null) clearTimeout(this.scheduled);
    this.scheduled = null;
    this.controller?.abort();
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (old === value) return;
    if (name === 'method') this.els.title.textContent = METHOD_LABELS[value as ViewMethod] ?? value ?? '';
    if (name === 'colormap' || name === 'size') this.drawColorbar();
    // Any input may change the answer: what is shown is no longer the current inputs' result.
    if (name !== 'manual') this.invalidate();
    this.schedule();
  }

  /**
   * Forgets what is shown: the map, the classes and the detections of earlier inputs give way to
   * a placeholder until the current inputs' own result arrives.
   */
  private invalidate(text = 'no map yet'): void {
    this.result = null;
    this.setState(this.isConnected && (this.imageSource || this.src) && this.model ? 'running' : 'idle', text);
    this.els.sub.textContent = '';
    this.els.classes.replaceChildren();
    this.els.detections.replaceChildren();
    this.showMessage('');
  }

  private setState(state: ViewState, placeholder: string): void {
    this.els.card.dataset.state = state;
    this.els.placeholder.textContent = placeholder;
  }

  /** Stops the running explanation (SmoothGrad and D-RISE stop between batches). */
  cancel(): void {
    if (this.scheduled !== null) clearTimeout(this.scheduled);
    this.scheduled = null;
    this.controller?.abort();
  }

  private schedule(): void {
    if (!this.isConnected || this.hasAttribute('manual')) return;
    if (!this.imageSource && !this.src) {
      if (!this.controller) {
        this.setState('idle', 'waiting for an image');
        this.setStatus('waiting for an image');
      }
      return;
    }
    if (!this.model) return;
    if (this.scheduled !== null) clearTimeout(this.scheduled);
    // Coalesce several attribute changes made in one task into one run.
    this.scheduled = setTimeout(() => {
      this.scheduled = null;
      this.run().catch(() => undefined); // shown in the element and sent as 'saliency-error'
    }, 0);
  }

  // ---------------------------------------------------------------------------------------------
  // Running

  /** Computes the map for the current inputs, shows it, and fires 'saliency-result'. */
  async run(): Promise<SaliencyResultDetail> {
    if (this.scheduled !== null) clearTimeout(this.scheduled);
    this.scheduled = null;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    const id = ++this.runCount;
    const method = this.method;
    const current = () => id === this.runCount;
    this.invalidate('computing…');
    this.setState('running', 'computing…');
    this.showProgress(null);
    try {
      const result = await this.compute(method, controller.signal, current);
      if (!current()) throw new CancelledError(`${method}: replaced by a newer run`);
      this.result = result;
      this.dispatchEvent(new CustomEvent('saliency-result', { detail: result, bubbles: true, composed: true }));
      return result;
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      if (current()) {
        const cancelled = error instanceof CancelledError || controller.signal.aborted;
        this.setStatus(cancelled ? 'cancelled' : 'failed');
        this.invalidate(cancelled ? 'cancelled' : 'failed');
        this.setState(cancelled ? 'cancelled' : 'failed', cancelled ? 'cancelled' : 'failed');
        if (!cancelled) this.showMessage(describeError(error));
        this.dispatchEvent(new CustomEvent('saliency-error', { detail: { method, error, message: error.message }, bubbles: true, composed: true }));
      }
      throw error;
    } finally {
      if (current()) {
        this.showProgress(null);
        this.controller = null;
      }
    }
  }

  private async compute(method: ViewMethod, signal: AbortSignal, current: () => boolean): Promise<SaliencyResultDetail> {
    if (!isMethodName(method)) throw new ArgumentError(`unknown method '${method}'; methods: ${VIEW_METHODS.join(', ')}`);
    const modelRef = this.model;
    const source = this.imageSource ?? (this.src || null);
    if (!source) throw new ArgumentError('no image: set the src attribute or the image property');
    const targetText = this.target.trim();
    const target = targetText === 'top' || targetText === '' ? 'top' : Number(targetText);
    if (target !== 'top' && (!Number.isInteger(target) || target < 0)) {
      throw new ArgumentError(`target="${targetText}" must be 'top' or a class index (0, 1, …)`);
    }
    const layer = this.layer || undefined;
    const cropText = (this.getAttribute('crop') ?? '').trim();
    const crop = cropText ? cropText.split(',').map((v) => Number(v.trim())) : null;
    if (crop && (crop.length !== 4 || crop.some((v) => !Number.isInteger(v) || v < 0) || crop[2] === 0 || crop[3] === 0)) {
      throw new ArgumentError(`crop="${cropText}" must be x,y,width,height in whole pixels`);
    }
    const opts = {
      samples: intAttr(this, 'samples', 50, 1),
      noiseLevel: numberAttr(this, 'noise-level', 0.15),
      seed: intAttr(this, 'seed', 0, 0),
      detection: intAttr(this, 'detection', 0, 0),
      masks: intAttr(this, 'masks', 2000, 1),
      grid: intAttr(this, 'grid', 16, 1),
      threshold: numberAttr(this, 'threshold', 0.3),
      top: intAttr(this, 'top', 3, 1),
    };
    const check = () => {
      if (signal.aborted || !current()) throw new CancelledError(`${method}: cancelled`);
    };
    // A run replaced by a newer one says nothing more.
    const status = (text: string) => current() && this.setStatus(text);

    status('opening WebGPU…');
    const started = performance.now();
    const gpu = await sharedGpu();
    check();
    status('reading the image…');
    const opened = performance.now();
    const whole = await readPixels(source);
    if (crop && (crop[0]! + crop[2]! > whole.width || crop[1]! + crop[3]! > whole.height)) {
      throw new ArgumentError(`crop="${cropText}" reaches outside the image, which is ${whole.width}×${whole.height} pixels`);
    }
    const pixels = crop ? cropRgba(whole, crop as [number, number, number, number]) : whole;
    check();
    status('loading the model…');
    const read = performance.now();

    // The work goes through the device's queue in steps: loading and the input tensor in one job,
    // then the saliency method, which queues itself (a browser cannot run it nested in a job).
    const normalize = parseNormalization(this.getAttribute('normalize') ?? undefined, 'normalize');
    const labelsRef = (this.getAttribute('labels') ?? '').trim();
    const labels = labelsRef ? await cachedLabels(labelsRef) : undefined;
    const labelsMs = performance.now() - read;
    check();
    const { model, input, inputShape, x, loadMs, compileInLoad } = await gpu.exclusive(async () => {
      check();
      const loading = performance.now();
      const compiledBefore = gpu.compileStats().ms;
      const model = await cachedModel(gpu, modelRef, { normalize });
      const loadMs = performance.now() - loading;
      const compileInLoad = gpu.compileStats().ms - compiledBefore;
      check();
      const [channels, height, width] = model.inputShape as [number, number, number];
      if (model.inputShape.length !== 3 || (channels !== 1 && channels !== 3)) {
        throw new ArgumentError(`model '${model.name}' takes input ${JSON.stringify(model.inputShape)}; images give [1 or 3, H, W]`);
      }
      const input = imageToTensorData(pixels, { channels, width, height, background: [0, 0, 0] });
      const inputShape = [1, channels, height, width];
      return { model, input, inputShape, x: gpu.keep(tensor(gpu, input, inputShape)), loadMs, compileInLoad };
    });
    const classNames = labels ?? model.classNames;
    try {
      const entry = methodByName(method);
      let precompileMs = 0;
      if (this.precompiles(model, entry.name, inputShape, target, layer, opts)) {
        status('compiling…');
        const p = await gpu.precompile(() => this.rehearse(entry.name, model, x, target, layer, opts));
        precompileMs = p.ms;
        check();
      }
      status(`running ${METHOD_LABELS[method]}…`);
      const t0 = performance.now();
      const compiledBeforeRun = gpu.compileStats().ms;
      const out =
        entry.kind === 'detector' ? await this.computeDrise(model, x, opts, signal, current) : await this.computeClassifier(entry.name, model, classNames, x, target, layer, opts, signal);
      const ms = performance.now() - t0;
      const compileInRun = gpu.compileStats().ms - compiledBeforeRun;
      check();
      const timings: RunTimings = {
        gpu: opened - started,
        image: read - opened,
        load: labelsMs + loadMs - compileInLoad,
        compile: compileInLoad + precompileMs + compileInRun,
        run: ms - compileInRun,
      };
      const detail: SaliencyResultDetail = { method, ...out, input, inputShape, ms, timings };
      this.show(detail, model, classNames);
      return detail;
    } finally {
      x.dispose();
    }
  }

  /** `run`'s map read back and the tensor freed. */
  private static async readMap(run: Promise<Tensor>): Promise<{ map: Float32Array; shape: number[] }> {
    const raw = await run;
    try {
      return { map: await raw.read(), shape: [...raw.shape] };
    } finally {
      raw.dispose();
    }
  }

  /**
   * Whether this run compiles its pipelines ahead, all at once (Gpu.precompile): with the attribute
   * precompile="on", the first time a model runs a method with these settings. Off by default:
   * on SwiftShader on 2 busy cores it did not shorten time to first map (docs/benchmarks.md).
   */
  private precompiles(model: ViewModel, method: MethodName, inputShape: number[], target: number | 'top', layer: string | undefined, opts: object): boolean {
    if (this.getAttribute('precompile') !== 'on') return false;
    const key = JSON.stringify([method, inputShape, target, layer ?? null, opts]);
    let seen = rehearsed.get(model);
    if (!seen) rehearsed.set(model, (seen = new Set()));
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  }

  /**
   * What `computeClassifier` / `computeDrise` ask the GPU for, without showing anything: the
   * rehearsal that Gpu.precompile runs (reads give zeros there, so the top class is class 0 and a
   * detector finds nothing; D-RISE's mask pipelines are then compiled by the run itself).
   */
  private async rehearse(method: MethodName, model: ViewModel, x: Tensor, requested: number | 'top', layer: string | undefined, o: { samples: number; noiseLevel: number; seed: number; threshold: number }): Promise<void> {
    if (methodByName(method).kind === 'detector') {
      if (model instanceof Model) await detect(model, x, { threshold: o.threshold });
      return;
    }
    await (await noGrad(model.gpu, () => model.forward(x, { logits: true }))).read();
    const target = requested === 'top' ? 0 : requested;
    await runMethod(method as ClassifierMethodName, model, x, { target, layer, samples: o.samples, noiseLevel: o.noiseLevel, seed: o.seed });
  }

  private async computeClassifier(
    method: ClassifierMethodName,
    model: ViewModel,
    classNames: readonly string[] | undefined,
    x: Tensor,
    requested: number | 'top',
    layer: string | undefined,
    o: { samples: number; noiseLevel: number; seed: number; top: number },
    signal: AbortSignal,
  ): Promise<Pick<SaliencyResultDetail, 'target' | 'map' | 'shape' | 'classes'>> {
    const logits = await model.gpu.exclusive(async () => {
      const out = await noGrad(model.gpu, () => model.forward(x, { logits: true }));
      try {
        if (out.rank !== 2) {
          throw new ArgumentError(
            `model '${model.name}' is not a classifier (its output per image is [${out.shape.slice(1).join(', ')}]); ` +
              `for one of our detectors use method="drise"`,
          );
        }
        return await out.read();
      } finally {
        out.dispose();
      }
    });
    if (classNames && classNames !== model.classNames) checkLabels(classNames, logits.length, model.name, 'the labels');
    // One sigmoid output (e.g. antispoof) is two classes, as in the CLI: 0, the output's own
    // (probability σ(z), score z), and 1, the other (1 − σ(z), score −z); both are listed.
    const binary = logits.length === 1;
    const own = classNames?.[0] ?? 'class 0';
    const names = binary ? [own, otherClassName(own)] : classNames;
    const probs = binary ? [1 / (1 + Math.exp(-logits[0]!)), 1 / (1 + Math.exp(logits[0]!))] : softmax(logits);
    const classes = topClasses(probs, names, binary ? 2 : o.top);
    const target = requested === 'top' ? classes[0]!.index : requested;
    if (binary && target > 1) {
      throw new ArgumentError(`target ${target} is out of range: model '${model.name}' has one sigmoid output: 0 (${own}) or 1 (${otherClassName(own)})`);
    }
    if (target >= probs.length) {
      throw new ArgumentError(`target ${target} is out of range: model '${model.name}' has ${logits.length} classes (0..${logits.length - 1})`);
    }
    if (!classes.some((c) => c.index === target)) {
      classes.push({ index: target, name: names?.[target] ?? `class ${target}`, probability: probs[target]! });
    }
    const negate = binary && target === 1;
    if (methodByName(method).progressUnit) this.showProgress({ done: 0, total: o.samples, method });
    const raw = runMethod(method, negate ? negatedOutput(model) : model, x, {
      target: negate ? 0 : target,
      layer,
      samples: o.samples,
      noiseLevel: o.noiseLevel,
      seed: o.seed,
      signal,
      onProgress: (done, total) => signal.aborted || this.showProgress({ done, total, method }),
    });
    // CAM reads the linear layer's weights, not the output: class 1's map is class 0's, negated.
    const shown = negate && method === 'cam' ? raw.then((own) => model.gpu.exclusive(() => ops.neg(own)).finally(() => own.dispose())) : raw;
    return { target, ...(await SaliencyView.readMap(shown)), classes };
  }

  private async computeDrise(
    model: ViewModel,
    x: Tensor,
    o: { masks: number; grid: number; seed: number; threshold: number; detection: number },
    signal: AbortSignal,
    current: () => boolean,
  ): Promise<Pick<SaliencyResultDetail, 'target' | 'map' | 'shape' | 'classes' | 'detections'>> {
    if (!(model instanceof Model)) throw new ArgumentError(`D-RISE needs a detector; '${model.name}' is not one of our detector models`);
    detectorGeometry(model); // a clear error for a classifier
    const [dets] = await model.gpu.exclusive(() => detect(model, x, { threshold: o.threshold }));
    const detections = dets ?? [];
    if (current()) this.showDetections(detections, o.detection, model.classNames);
    const chosen = detections[o.detection];
    if (!chosen) {
      throw new ArgumentError(
        detections.length
          ? `detection ${o.detection} does not exist: the detector found ${detections.length} (0..${detections.length - 1})`
          : `the detector found nothing above threshold ${o.threshold}; nothing to explain`,
      );
    }
    this.showProgress({ done: 0, total: o.masks, method: 'drise' });
    const raw = runMethod('drise', (images) => detect(model, images, { threshold: 0 }), x, {
      target: chosen,
      masks: o.masks,
      gridSize: o.grid,
      seed: o.seed,
      signal,
      onProgress: (done, total) => current() && this.showProgress({ done, total, method: 'drise' }),
    });
    const classes = topClasses(chosen.scores, model.classNames, 3);
    return { target: o.detection, ...(await SaliencyView.readMap(raw)), classes, detections };
  }

  // ---------------------------------------------------------------------------------------------
  // Display

  private size(): number {
    try {
      return intAttr(this, 'size', 224, 16);
    } catch {
      return 224;
    }
  }

  private colormap(): ColormapName {
    const c = this.getAttribute('colormap') as ColormapName | null;
    return c && COLORMAPS.includes(c) ? c : 'viridis';
  }

  private drawColorbar(): void {
    const size = this.size();
    this.style.setProperty('--size', `${size}px`);
    const img = renderColorbar(size, this.colormap());
    const canvas = this.els.bar;
    canvas.width = img.width;
    canvas.height = img.height;
    canvas.getContext('2d')?.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
  }

  private show(r: SaliencyResultDetail, model: ViewModel, classNames: readonly string[] | undefined = model.classNames): void {
    const size = this.size();
    const [, channels, height, width] = r.inputShape as [number, number, number, number];
    const view = inputToRgba(r.input, channels, width, height);
    const entry = methodByName(r.method);
    const kind = entry.display;
    const opacity = numberAttr(this, 'opacity', DEFAULT_OPACITY);
    const img = renderOverlay({ data: r.map, shape: r.shape }, view, { size, kind, colormap: this.colormap(), opacity });
    const canvas = this.els.overlay;
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext('2d')!;
    ctx.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
    if (entry.kind === 'detector' && r.detections) {
      const s = size / width;
      r.detections.forEach((d, i) => {
        const [x1, y1, x2, y2] = d.box;
        ctx.strokeStyle = i === r.target ? '#ff4040' : 'rgba(255,255,255,0.6)';
        ctx.lineWidth = i === r.target ? 2 : 1;
        ctx.strokeRect(x1 * s, y1 * s, (x2 - x1) * s, (y2 - y1) * s);
        ctx.fillStyle = ctx.strokeStyle;
        ctx.font = '11px system-ui, sans-serif';
        ctx.fillText(String(i), x1 * s + 2, y1 * s + 11);
      });
    }
    this.drawColorbar();
    this.setState('done', '');
    this.showClasses(r.classes, entry.kind === 'detector' ? -1 : r.target);
    const targetName =
      entry.kind === 'detector' ? `detection ${r.target}` : (r.classes.find((c) => c.index === r.target)?.name ?? classNames?.[r.target] ?? `class ${r.target}`);
    this.els.sub.textContent = targetName;
    this.setStatus(`${model.name} · ${r.ms.toFixed(0)} ms`);
  }

  private showClasses(classes: ClassScore[], target: number): void {
    const list = this.els.classes;
    list.replaceChildren(
      ...classes.map((c) => {
        const li = document.createElement('li');
        if (c.index === target) li.className = 'target';
        const fill = document.createElement('span');
        fill.className = 'fill';
        fill.style.width = `${(c.probability * 100).toFixed(1)}%`;
        const name = document.createElement('span');
        name.textContent = `${c.index}: ${c.name}`;
        const p = document.createElement('span');
        p.className = 'p';
        p.textContent = `${(c.probability * 100).toFixed(1)}%`;
        li.append(fill, name, p);
        return li;
      }),
    );
  }

  private showDetections(detections: Detection[], chosen: number, names: readonly string[] | undefined): void {
    this.els.detections.replaceChildren(
      ...detections.map((d, i) => {
        const b = document.createElement('button');
        b.type = 'button';
        const k = d.scores.indexOf(Math.max(...d.scores));
        b.textContent = `${i}: ${names?.[k] ?? `class ${k}`} ${((d.objectness ?? 1) * 100).toFixed(0)}%`;
        if (i === chosen) b.className = 'chosen';
        b.addEventListener('click', () => {
          this.setAttribute('detection', String(i)); // runs again by itself, unless manual
          if (this.hasAttribute('manual')) this.run().catch(() => undefined);
        });
        return b;
      }),
    );
  }

  private setStatus(text: string): void {
    this.els.status.textContent = text;
  }

  private showMessage(text: string): void {
    this.els.message.textContent = text;
    this.els.message.classList.toggle('shown', text !== '');
  }

  private showProgress(p: { done: number; total: number; method: string } | null): void {
    this.els.progressRow.classList.toggle('shown', p !== null);
    if (!p) return;
    this.els.progress.max = p.total;
    this.els.progress.value = p.done;
    this.els.progressText.textContent = `${p.done}/${p.total}`;
    this.dispatchEvent(new CustomEvent('saliency-progress', { detail: p, bubbles: true, composed: true }));
  }
}

function describeError(e: Error): string {
  if (e instanceof NoGpuError) {
    const secure = typeof isSecureContext === 'undefined' || isSecureContext;
    return `WebGPU is not available: ${e.message}${secure ? '' : '\nThis page is not a secure context: serve it over https or from localhost.'}`;
  }
  return e.message;
}

/** Registers the element as <saliency-view> (once; safe to call again). */
export function defineSaliencyView(name = 'saliency-view'): void {
  if (typeof customElements === 'undefined') return;
  if (!customElements.get(name)) customElements.define(name, SaliencyView);
}

declare global {
  interface HTMLElementTagNameMap {
    'saliency-view': SaliencyView;
  }
  interface HTMLElementEventMap {
    'saliency-result': CustomEvent<SaliencyResultDetail>;
    'saliency-progress': CustomEvent<{ method: string; done: number; total: number }>;
    'saliency-error': CustomEvent<{ method: string; error: Error; message: string }>;
  }
}
