/**
 * "Inside the network": the demo page's second view, for one image, model and method. Plain DOM.
 *
 * - Layers: every layer's output as a grid of its channels; pick a layer to see its channels large,
 *   pick a channel to follow it through the sections below.
 * - Gradients: the gradient arriving at the picked layer in the vanilla gradient's, guided
 *   backprop's and DeconvNet's backward passes (the ordinary, guided and deconv ReLU rules), with
 *   the masks 1[x > 0] and 1[g > 0] and what each rule lets through.
 * - Pooling: a max-pool layer's switches (where each window's maximum was), through which DeconvNet
 *   (and the ordinary gradient) sends the gradient back.
 * - Grad-CAM at the picked layer (or the default one): the channel weights α_k as bars, the
 *   weighted maps α_k·A^k, their sum and the map.
 * - Stepping: the chosen method's backward passes one tape entry at a time: what goes in, the rule,
 *   what comes out.
 * - Sanity check: the method again on a copy of the model whose top k layers are re-initialised
 *   (Adebayo et al. 2018); see sanity.ts.
 *
 * Everything drawn comes from the library's trace (trace-data.ts). After each drawing the view's
 * root fires 'inside-render' with what it drew (`InsideSnapshot`: each picture's name, as in its
 * canvas's data-map attribute, with the numbers it shows), which the browser test compares with a
 * Node run.
 */
import { ArgumentError, NoGpuError } from '../../src/runtime/errors.js';
import type { Gpu } from '../../src/runtime/gpu.js';
import { tensor, type Tensor } from '../../src/runtime/tensor.js';
import { defaultCamLayer } from '../../src/saliency/core.js';
import { methodByName } from '../../src/saliency/methods.js';
import { cropRgba, imageToTensorData, inputToRgba } from '../../src/saliency/input.js';
import { renderOverlay } from '../../src/saliency/render.js';
import type { RgbaImage } from '../../src/saliency/colormaps.js';
import { cachedModel, exclusive, sharedGpu, type ViewModel } from '../../src/web/models.js';
import { readPixels, type ImageInput } from '../../src/web/saliency-view.js';
import {
  absMax,
  channelImage,
  channelValues,
  gridImage,
  gridLayout,
  maskImage,
  planeDims,
  positive,
  switchTargets,
  tileAt,
  type PlaneDims,
} from './draw.js';
import { el } from './dom.js';
import { sanitySection, type SanityHost } from './sanity.js';
import { DEFAULT_METHOD, type InsideState } from './state.js';
import {
  RULE_METHODS,
  classify,
  insideMethods,
  traceGradCam,
  traceInside,
  type GradCamData,
  type InsideData,
  type Plane,
  type StepData,
} from './trace-data.js';

/** What the view explains: the page form's model, image, crop and target. */
export interface InsideInputs {
  model: string;
  image: ImageInput | null;
  crop: string;
  target: string;
}

/** What the view drew last: the state it drew, and each picture's numbers. */
export interface InsideSnapshot {
  status: 'waiting' | 'computing' | 'ready' | 'failed';
  /** True while a part (Grad-CAM at a new layer, the sanity check) is still being computed. */
  pending: boolean;
  message: string;
  /** The state as drawn: the layer, channel and step actually shown (defaults resolved). */
  state: InsideState & { layer: string | null; channel: number | null };
  target: number | null;
  /** The max-pool layer and Grad-CAM layer shown. */
  pool: string | null;
  camLayer: string | null;
  /** The step shown: its op, layer and rules; null before data or for a method without a backward pass. */
  step: { index: number; count: number; pass: string; op: string; label: string; rules: string } | null;
  /** Picture name → its shape and values (masks: 0/1; switches: flat input indices). */
  drawn: Record<string, { shape: number[]; values: ArrayLike<number> }>;
}

/** What work on the loaded input gets: the device, the model, the input tensor and the class explained. */
export interface InputContext {
  gpu: Gpu;
  model: ViewModel;
  x: Tensor;
  target: number;
}

/** A loaded model and input, and what was computed for them. */
interface Loaded {
  key: string;
  gpu: Gpu;
  model: ViewModel;
  input: Float32Array;
  inputShape: number[];
  data: InsideData;
  cams: Map<string, { promise: Promise<GradCamData>; value: GradCamData | null; error: string | null }>;
}

const STYLE = `
#inside { padding: 12px 16px 40px; }
#inside h2 { font-size: 16px; margin: 18px 0 4px; }
#inside h3 { font-size: 13px; margin: 6px 0 4px; }
#inside .note { font-size: 12px; color: #556; margin: 2px 0 8px; max-width: 70em; }
#inside .top { display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }
#inside .top label { display: inline-block; margin-right: 10px; }
#inside .top select, #inside .top input, #inside .controls select { width: auto; }
#inside .status { font-size: 12px; color: #556; }
#inside .message { padding: 6px 8px; border-radius: 4px; background: #fdecea; color: #8a1c12; white-space: pre-wrap; font-size: 12px; }
#inside .message:empty { display: none; }
#inside canvas { image-rendering: pixelated; display: block; background: #ccd; }
#inside figure { margin: 0; display: inline-flex; flex-direction: column; gap: 2px; vertical-align: top; }
#inside figcaption { font-size: 12px; color: #334; max-width: 260px; }
#inside figcaption .num { font-variant-numeric: tabular-nums; color: #556; }
#inside .row { display: flex; gap: 14px; flex-wrap: wrap; align-items: flex-start; }
#inside .strip { display: flex; gap: 8px; overflow-x: auto; padding-bottom: 6px; align-items: flex-end; }
#inside .strip button { display: flex; flex-direction: column; align-items: center; gap: 3px; font-size: 11px; padding: 4px; background: #fff; border: 1px solid #ccd; border-radius: 4px; cursor: pointer; }
#inside .strip button[aria-pressed='true'] { border-color: #c33; box-shadow: 0 0 0 2px #f3b5b5; }
#inside .strip button.stepped { background: #fff6d8; }
#inside .pick { position: relative; display: inline-block; cursor: crosshair; }
#inside .pick .outline { position: absolute; border: 2px solid #111; pointer-events: none; box-sizing: border-box; }
#inside .rules { display: grid; grid-template-columns: repeat(3, minmax(200px, 1fr)); gap: 14px; }
#inside .rules > div { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: 8px; }
#inside .rules .cells { display: grid; grid-template-columns: repeat(2, auto); gap: 8px; justify-content: start; }
#inside .formula { font-family: ui-monospace, monospace; font-size: 12px; }
#inside .stepper { display: flex; gap: 8px; align-items: center; margin: 4px 0 8px; }
#inside .stepper output { font-variant-numeric: tabular-nums; min-width: 8em; }
#inside .kernels { font-family: ui-monospace, monospace; font-size: 11px; color: #445; }
#inside svg.bars rect.chosen { stroke: #111; stroke-width: 1.5; }
#inside svg.bars { background: #fff; border: 1px solid #dde; cursor: pointer; }
#inside .legend { display: inline-flex; gap: 10px; font-size: 11px; color: #445; align-items: center; }
#inside .legend i { display: inline-block; width: 12px; height: 12px; border: 1px solid #99a; vertical-align: middle; margin-right: 3px; }
`;

/** What the ops' own backward rules do, for the stepper (ops without an entry: "the op's gradient"). */
const OP_RULES: Readonly<Record<string, string>> = Object.assign(Object.create(null) as Record<string, string>, {
  conv2d: 'input gradient of the convolution: the same filters, transposed (a "deconvolution")',
  linear: 'g · Wᵀ: the gradient through the weights',
  maxpool2d: "unpooling: each output's gradient goes back to its window's maximum (the switch)",
  avgpool2d: 'each output spreads its gradient evenly over its window',
  globalavgpool: 'each channel spreads its gradient evenly over the plane',
  reshape: 'the same values, in the input’s shape',
  scale: 'g times the same factor (dropout at inference: 1)',
  add: 'g to both inputs',
  activation: 'the activation’s rule',
});

const RULE_FORMULAS: Readonly<Record<string, string>> = Object.fromEntries(RULE_METHODS.map((r) => [r.rule, r.formula]));

const fmt = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 1e3 || Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toPrecision(3));
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

function zerosShare(values: ArrayLike<number>): number {
  let z = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === 0) z++;
  return values.length ? z / values.length : 0;
}

/** A zoom that makes a picture about `target` pixels wide (at least 1, whole pixels). */
function zoomFor(width: number, height: number, target: number): number {
  return Math.max(1, Math.floor(target / Math.max(width, height)));
}

export function parseCrop(text: string): [number, number, number, number] | null {
  const t = text.trim();
  if (!t) return null;
  const v = t.split(',').map((s) => Number(s.trim()));
  if (v.length !== 4 || v.some((n) => !Number.isInteger(n) || n < 0) || v[2] === 0 || v[3] === 0) {
    throw new ArgumentError(`crop "${t}" must be x,y,width,height in whole pixels`);
  }
  return v as [number, number, number, number];
}

export class InsideView {
  readonly root: HTMLElement;
  private state: InsideState;
  private inputs: InsideInputs = { model: '', image: null, crop: '', target: 'top' };
  private loaded: Loaded | null = null;
  private runId = 0;
  private status: InsideSnapshot['status'] = 'waiting';
  private message = '';
  private drawn: InsideSnapshot['drawn'] = {};
  private readonly els: { status: HTMLElement; message: HTMLElement; method: HTMLSelectElement; top: HTMLElement; body: HTMLElement };
  private readonly sanity: ReturnType<typeof sanitySection>;

  /**
   * @param root the element the view fills (the page's #inside)
   * @param state the view's state at first (from the URL)
   * @param onState called when the reader changes the state (the page writes it into the URL)
   */
  constructor(
    root: HTMLElement,
    state: InsideState,
    private readonly onState: (s: InsideState) => void,
  ) {
    this.root = root;
    this.state = { ...state };
    if (!document.getElementById('inside-style')) document.head.append(el('style', { id: 'inside-style', text: STYLE }));
    const method = el('select', { id: 'inside-method', 'aria-label': 'method' });
    this.els = {
      status: el('span', { class: 'status', role: 'status' }),
      message: el('div', { class: 'message', role: 'alert' }),
      method,
      top: el('div', { class: 'top' }),
      body: el('div', { class: 'body' }),
    };
    this.fillMethods(null);
    method.addEventListener('change', () => this.update({ method: method.value as InsideState['method'], step: 1 }));
    const host: SanityHost = {
      withInput: (fn) => (this.loaded ? this.withInput(this.loaded, fn) : Promise.reject(new Error('nothing loaded'))),
      changed: (s) => this.update(s),
      rendered: () => this.redraw(),
      draw: (name, img, zoom, values) => this.canvas(name, img, zoom, values),
    };
    this.sanity = sanitySection(host);
    root.replaceChildren(
      el('p', { class: 'note', text: 'One image, one model, one method, seen from inside: every picture below is a tensor the library recorded while it ran (its trace). Red is positive, blue negative, white zero; black cells in a mask are 1.' }),
      el('div', { class: 'controls' }, el('label', {}, 'method ', method), ' ', this.els.status),
      this.els.message,
      this.els.top,
      this.els.body,
    );
  }

  /** The view's state (as the reader set it; defaults unresolved). */
  get currentState(): InsideState {
    return { ...this.state };
  }

  /** New inputs from the page's form: recomputes when they differ from the last ones. */
  setInputs(inputs: InsideInputs): void {
    this.inputs = { ...inputs };
    this.refresh();
  }

  /** Recomputes if the inputs or the method changed since the last computation; else redraws. */
  refresh(): void {
    if (!this.inputs.image || !this.inputs.model) {
      this.loaded = null;
      this.runId++;
      this.setStatus('waiting', 'Pick or drop an image (a Fashion-MNIST sample suits the bundled models), and a model.');
      this.redraw();
      return;
    }
    if (this.loaded?.key === this.key()) {
      this.redraw();
      return;
    }
    void this.compute();
  }

  /** Changes the state (as a control or key does), tells the page, and redraws. */
  update(change: Partial<InsideState>): void {
    const before = this.state;
    this.state = { ...this.state, ...change };
    this.onState(this.currentState);
    if (change.method !== undefined && change.method !== before.method) this.refresh();
    else this.redraw();
  }

  /** One step back through the backward pass (+1, toward the input) or forward (−1). */
  stepBy(delta: number): void {
    const n = this.loaded?.data.method.steps.length ?? 0;
    if (!n) return;
    const step = Math.min(n, Math.max(1, this.shownStep(n) + delta));
    if (step !== this.state.step) this.update({ step });
  }

  /** Goes to the first (1) or last (Infinity) step. */
  stepTo(step: number): void {
    const n = this.loaded?.data.method.steps.length ?? 0;
    if (!n) return;
    this.update({ step: Math.min(n, Math.max(1, step)) });
  }

  private shownStep(n: number): number {
    return Math.min(n, Math.max(1, this.state.step));
  }

  private key(): string {
    const image = this.inputs.image;
    const imageKey = typeof image === 'string' ? image : image === null ? '' : objectKey(image);
    return JSON.stringify([this.inputs.model, imageKey, this.inputs.crop.trim(), this.inputs.target.trim() || 'top', this.state.method]);
  }

  /**
   * Runs `fn` with the input as a tensor, made in the device's queue, and frees the tensor after.
   * `fn` calls the saliency methods outside the queue's jobs (they queue themselves: nested in a
   * job, a browser would wait for the job forever) and makes its own tensors inside one (`exclusive`).
   */
  private async withInput<T>(l: Loaded, fn: (ctx: InputContext) => Promise<T>): Promise<T> {
    const x = await exclusive(async () => tensor(l.gpu, l.input, l.inputShape));
    try {
      return await fn({ gpu: l.gpu, model: l.model, x, target: l.data.target });
    } finally {
      x.dispose();
    }
  }

  private fillMethods(model: ViewModel | null): void {
    const methods = insideMethods(model ?? undefined);
    if (!methods.some((m) => m.name === this.state.method)) this.state = { ...this.state, method: methods.some((m) => m.name === DEFAULT_METHOD) ? DEFAULT_METHOD : methods[0]!.name };
    this.els.method.replaceChildren(...methods.map((m) => el('option', { value: m.name, text: m.label })));
    this.els.method.value = this.state.method;
  }

  private setStatus(status: InsideSnapshot['status'], text: string, message = ''): void {
    this.status = status;
    this.message = message;
    this.els.status.textContent = text;
    this.els.message.textContent = message;
    this.root.dataset.status = status;
  }

  private async compute(): Promise<void> {
    const id = ++this.runId;
    const { model: ref, image, crop, target: targetText } = this.inputs;
    const current = () => id === this.runId;
    // Never show the pictures of other inputs: clear them now.
    this.loaded = null;
    this.setStatus('computing', 'computing the traces…');
    this.redraw();
    try {
      const t = targetText.trim();
      const target = t === '' || t === 'top' ? 'top' : Number(t);
      if (target !== 'top' && (!Number.isInteger(target) || target < 0)) throw new ArgumentError(`target "${t}" must be 'top' or a class index (0, 1, …)`);
      const region = parseCrop(crop);
      const gpu = await sharedGpu();
      const whole = await readPixels(image!);
      const pixels = region ? cropRgba(whole, region) : whole;
      const model = await exclusive(() => cachedModel(gpu, ref));
      if (!current()) return;
      const [channels, height, width] = model.inputShape as [number, number, number];
      if (model.inputShape.length !== 3 || (channels !== 1 && channels !== 3)) {
        throw new ArgumentError(`model '${model.name}' takes input ${shapeText(model.inputShape)}; images give [1 or 3, H, W]`);
      }
      this.fillMethods(model);
      const input = imageToTensorData(pixels, { channels, width, height, background: [0, 0, 0] });
      const inputShape = [1, channels, height, width];
      const method = this.state.method;
      // Tensors and the forward pass in the device's queue; the methods queue themselves.
      const x = await exclusive(async () => tensor(gpu, input, inputShape));
      let data: InsideData;
      try {
        const c = await exclusive(() => classify(model, x, target));
        data = await traceInside(model, x, { method, target: c.target, classes: c.classes });
      } finally {
        x.dispose();
      }
      if (!current()) return;
      // The key of what was computed: the method may have been replaced by one the model supports.
      this.loaded = { key: this.key(), gpu, model, input, inputShape, data, cams: new Map() };
      this.sanity.reset();
      this.setStatus('ready', `${model.name} · ${data.layers.length} layers · ${data.method.steps.length} backward steps`);
      this.redraw();
    } catch (e) {
      if (!current()) return;
      const err = e instanceof Error ? e : new Error(String(e));
      const text = err instanceof NoGpuError ? `WebGPU is not available: ${err.message}` : err.message;
      this.setStatus('failed', 'failed', text);
      this.redraw();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Drawing

  /** A canvas showing `img` at `zoom`, named `name` (data-map) and registered with its numbers. */
  private canvas(name: string, img: RgbaImage, zoom: number, values: { shape: number[]; values: ArrayLike<number> }): HTMLCanvasElement {
    const c = el('canvas', { 'data-map': name });
    c.width = img.width;
    c.height = img.height;
    c.style.width = `${img.width * zoom}px`;
    c.style.height = `${img.height * zoom}px`;
    c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
    this.drawn[name] = values;
    return c;
  }

  private figure(canvas: Element, caption: string, detail = ''): HTMLElement {
    return el('figure', {}, canvas, el('figcaption', {}, caption, detail ? el('span', { class: 'num', text: ` ${detail}` }) : null));
  }

  /** One channel of `plane` on the scale `scale`, named `name`. */
  private channel(name: string, plane: Plane, c: number, size: number, scale?: number): HTMLCanvasElement {
    const d = planeDims(plane.shape);
    const img = channelImage(plane, c, scale);
    return this.canvas(name, img, zoomFor(d.w, d.h, size), { shape: [d.h, d.w], values: channelValues(plane, c) });
  }

  /** A 0/1 mask laid out as a channel of `dims`. */
  private mask(name: string, bits: Uint8Array, dims: PlaneDims, size: number): HTMLCanvasElement {
    return this.canvas(name, maskImage(bits, dims), zoomFor(dims.w, dims.h, size), { shape: [dims.h, dims.w], values: bits });
  }

  /** Every channel of `plane` as a grid; clicking a tile picks that channel when `pick` is set. */
  private grid(name: string, plane: Plane, size: number, chosen: number | null, pick?: (c: number) => void, mask = false): HTMLElement {
    const d = planeDims(plane.shape);
    const layout = gridLayout(d);
    const zoom = zoomFor(layout.width, layout.height, size);
    const canvas = this.canvas(name, gridImage(plane, mask ? 'mask' : undefined), zoom, { shape: plane.shape, values: plane.values });
    const wrap = el('div', { class: 'pick' }, canvas);
    if (chosen !== null && d.channels > 1) {
      const outline = el('div', { class: 'outline' });
      const col = chosen % layout.cols;
      const row = Math.floor(chosen / layout.cols);
      Object.assign(outline.style, {
        left: `${(col * (d.w + 1) - 1) * zoom}px`,
        top: `${(row * (d.h + 1) - 1) * zoom}px`,
        width: `${(d.w + 2) * zoom}px`,
        height: `${(d.h + 2) * zoom}px`,
      });
      wrap.append(outline);
    }
    if (pick && d.channels > 1) {
      canvas.title = 'click a channel to pick it';
      canvas.addEventListener('click', (e) => {
        const c = tileAt(d, Math.floor(e.offsetX / zoom), Math.floor(e.offsetY / zoom));
        if (c !== null) pick(c);
      });
    } else {
      wrap.style.cursor = 'default';
    }
    return wrap;
  }

  /** Redraws everything from the loaded data and the state, then fires 'inside-render'. */
  private redraw(): void {
    this.drawn = {};
    const l = this.loaded;
    let info: Pick<InsideSnapshot, 'pool' | 'camLayer' | 'step' | 'target'> & { layer: string | null; channel: number | null; pending: boolean } = {
      pool: null,
      camLayer: null,
      step: null,
      target: null,
      layer: null,
      channel: null,
      pending: false,
    };
    if (!l) {
      this.els.top.replaceChildren();
      this.els.body.replaceChildren();
    } else {
      info = this.drawAll(l);
    }
    const detail: InsideSnapshot = {
      status: this.status,
      pending: info.pending,
      message: this.message,
      state: { ...this.state, layer: info.layer, channel: info.channel },
      target: info.target,
      pool: info.pool,
      camLayer: info.camLayer,
      step: info.step,
      drawn: this.drawn,
    };
    this.root.dispatchEvent(new CustomEvent('inside-render', { detail, bubbles: true }));
  }

  private drawAll(l: Loaded) {
    const { data } = l;
    const layers = data.layers;
    // The picked layer: the state's (a layer that ran fused into another is shown as that one), else Grad-CAM's default.
    let layer = layers.find((a) => a.name === this.state.layer) ?? layers.find((a) => this.state.layer !== null && a.label.split('+').includes(this.state.layer));
    // Default: the last layer with a spatial map and a ReLU rule (where the rules differ), else Grad-CAM's default layer.
    layer ??= [...layers].reverse().find((a) => a.output.shape.length === 4 && l.data.gradients.ordinary.get(a.name)?.rule);
    if (!layer) {
      let fallback: string | null = null;
      try {
        fallback = defaultCamLayer('inside', l.model);
      } catch {
        fallback = null;
      }
      layer = layers.find((a) => a.name === fallback) ?? layers[Math.floor(layers.length / 2)]!;
    }
    const dims = planeDims(layer.output.shape);
    const channel = this.state.channel !== null && this.state.channel < dims.channels ? this.state.channel : mostActive(layer.output);
    const steps = data.method.steps;
    const stepIndex = steps.length ? this.shownStep(steps.length) - 1 : -1;
    const step = stepIndex >= 0 ? steps[stepIndex]! : null;
    const pick = (c: number) => this.update({ layer: layer!.name, channel: c });

    this.els.top.replaceChildren(this.drawResult(l));
    const layersSection = this.drawLayers(l, layer.name, channel, step?.layer ?? null, pick);
    const gradients = this.drawGradients(l, layer.name, layer.label, channel);
    const pool = this.drawPool(l, layer.name, channel);
    const cam = this.drawCam(l, layer.name, channel);
    const stepper = this.drawSteps(l, step, stepIndex);
    const sanity = this.sanity.draw({ model: l.model, data, state: this.state, input: l.input, inputShape: l.inputShape });
    this.els.body.replaceChildren(layersSection, gradients, pool.section, cam.section, stepper, sanity.section);
    return {
      layer: layer.name,
      channel,
      target: data.target,
      pool: pool.name,
      camLayer: cam.layer,
      pending: cam.pending || sanity.pending,
      step: step ? { index: stepIndex + 1, count: steps.length, pass: step.pass, op: step.op, label: step.label, rules: step.rules } : null,
    };
  }

  private drawResult(l: Loaded): HTMLElement {
    const { data, inputShape, input } = l;
    const [, channels, height, width] = inputShape as [number, number, number, number];
    const base = inputToRgba(input, channels, width, height);
    const size = 168;
    const inputCanvas = this.canvas('input', base, zoomFor(width, height, size), { shape: inputShape, values: input });
    const m = data.method;
    const overlay = renderOverlay({ data: m.map.values, shape: m.map.shape }, base, { size, kind: m.display, colormap: 'viridis' });
    const mapCanvas = this.canvas('result', overlay, 1, { shape: m.map.shape, values: m.map.values });
    const top = data.classes.slice(0, 3).map((c) => `${c.index}: ${c.name} ${pct(c.probability)}`).join(' · ');
    const targetName = data.classes.find((c) => c.index === data.target)?.name ?? `class ${data.target}`;
    return el(
      'div',
      { class: 'row' },
      this.figure(inputCanvas, 'the model’s input'),
      this.figure(mapCanvas, `${m.label}, explaining ${data.target}: ${targetName}`),
      el('div', { class: 'note' }, el('div', { text: `prediction: ${top}` }), el('div', { text: `${m.label}’s passes: ${m.passes.join(' → ')}` })),
    );
  }

  private drawLayers(l: Loaded, picked: string, channel: number, stepped: string | null, pick: (c: number) => void): HTMLElement {
    const layers = l.data.layers;
    const strip = el('div', { class: 'strip', role: 'group', 'aria-label': 'layers' });
    for (const a of layers) {
      const d = planeDims(a.output.shape);
      const g = gridLayout(d);
      const thumb = gridImage(a.output);
      const c = el('canvas');
      c.width = thumb.width;
      c.height = thumb.height;
      const zoom = Math.max(1, Math.min(2, Math.floor(96 / Math.max(g.width, g.height))));
      c.style.width = `${Math.min(thumb.width * zoom, 128)}px`;
      c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(thumb.data), thumb.width, thumb.height), 0, 0);
      const b = el('button', { type: 'button', 'aria-pressed': String(a.name === picked), 'data-layer': a.name, title: `${a.label} ${shapeText(a.output.shape)}` }, c, shortLabel(a.label));
      if (stepped !== null && (a.name === stepped)) b.classList.add('stepped');
      b.addEventListener('click', () => this.update({ layer: a.name, channel: null }));
      strip.append(b);
    }
    const a = layers.find((x) => x.name === picked)!;
    const d = planeDims(a.output.shape);
    const max = absMax(a.output.values);
    const what = a.output.shape.length === 4 ? `${d.channels} channels of ${d.h}×${d.w}` : `${d.valid} values`;
    return el(
      'section',
      { class: 'layers' },
      el('h2', { text: 'Layers' }),
      el('p', { class: 'note', text: 'Each layer’s output in the forward pass, input on the left. Pick a layer to see its channels; click a channel to follow it in the sections below. (A highlighted layer is where the step shown below is.)' }),
      strip,
      el('h3', { text: `${a.label} (${a.op}): ${what}, ${shapeText(a.output.shape)}; max |value| ${fmt(max)}, zeros ${pct(zerosShare(a.output.values))}${d.channels > 1 ? `; channel ${channel} picked` : ''}` }),
      this.grid('activation', a.output, 560, d.channels > 1 ? channel : null, pick),
    );
  }

  private drawGradients(l: Loaded, layer: string, label: string, channel: number): HTMLElement {
    const section = el(
      'section',
      { class: 'gradients' },
      el('h2', { text: `Gradients at ${label}${planeDims(l.data.layers.find((a) => a.name === layer)!.output.shape).channels > 1 ? `, channel ${channel}` : ''}` }),
      el('p', {
        class: 'note',
        text: 'The gradient g of the class score arriving at this layer’s output in three backward passes, one per ReLU rule, and what the rule lets through to the layer below. 1[x > 0] is where the forward pass let x through (the same in all three); 1[g > 0] is where the arriving gradient is positive. The ordinary rule keeps the first mask, DeconvNet’s the second, guided backprop both.',
      }),
    );
    const columns = el('div', { class: 'rules' });
    let any = false;
    for (const { rule, method, formula } of RULE_METHODS) {
      const g = l.data.gradients[rule].get(layer);
      const col = el('div', {}, el('h3', { text: `${methodByName(method).label}: ${rule} rule` }));
      if (!g) {
        col.append(el('p', { class: 'note', text: 'No gradient reaches this layer in this pass.' }));
        columns.append(col);
        continue;
      }
      const size = 150;
      const d = planeDims(g.incoming.shape);
      const c = channel < d.channels ? channel : 0;
      const gValues = channelValues(g.incoming, c);
      const scale = absMax(gValues);
      const cells = el('div', { class: 'cells' });
      cells.append(this.figure(this.channel(`gradients.${rule}.g`, g.incoming, c, size, scale), 'g arriving', `±${fmt(scale)}`));
      if (g.rule) {
        any = true;
        cells.append(
          this.figure(this.channel(`gradients.${rule}.after`, g.rule.after, c, size, scale), `after the rule: ${formula}`, `zeros ${pct(zerosShare(channelValues(g.rule.after, c)))}`),
          this.figure(this.mask(`gradients.${rule}.x>0`, positive(channelValues(g.rule.y, c)), d, size), '1[x > 0]', `(from y = ${g.rule.activation}(x))`),
          this.figure(this.mask(`gradients.${rule}.g>0`, positive(gValues), d, size), '1[g > 0]'),
        );
        col.append(el('div', { class: 'formula', text: `g_in = ${RULE_FORMULAS[g.rule.rule] ?? g.rule.rule}` }));
      } else {
        cells.append(el('p', { class: 'note', text: 'No ReLU at this layer: the rule applies at the layers with one.' }));
      }
      col.append(cells);
      columns.append(col);
    }
    if (!any) {
      const withRule = l.data.layers.filter((a) => l.data.gradients.ordinary.get(a.name)?.rule).map((a) => shortLabel(a.label));
      const hint = withRule.length ? ` Pick a layer with one (${withRule.slice(-3).join(', ')}) to see the rules at work.` : ' This model has no ReLU.';
      section.append(el('p', { class: 'note', text: `This layer has no ReLU of its own, so the three passes differ here only through the layers above.${hint}` }));
    }
    section.append(columns);
    return section;
  }

  private drawPool(l: Loaded, layer: string, channel: number): { section: HTMLElement; name: string | null } {
    const section = el('section', { class: 'pooling' });
    const order = l.data.layers.map((a) => a.name);
    const pools = order.filter((n) => l.data.pools.has(n));
    if (!pools.length) {
      section.append(el('h2', { text: 'Pooling' }), el('p', { class: 'note', text: 'This model has no max-pool layer.' }));
      return { section, name: null };
    }
    const at = order.indexOf(layer);
    const name = pools.find((n) => order.indexOf(n) >= at) ?? pools.at(-1)!;
    const p = l.data.pools.get(name)!;
    const outDims = planeDims(p.output.shape);
    const inDims = planeDims(p.unpooled.shape);
    const c = channel < outDims.channels ? channel : 0;
    const sw = p.switches.subarray(c * outDims.valid, (c + 1) * outDims.valid);
    const size = 196;
    const row = el('div', { class: 'row' });
    if (p.input) row.append(this.figure(this.channel('pool.input', p.input, c, size), `the pool’s input x (channel ${c})`));
    row.append(
      this.figure(this.mask('pool.switches', switchTargets(sw, inDims.valid), inDims, size), 'the switches: where each window’s maximum was'),
      this.figure(this.channel('pool.output', p.output, c, size / 2), 'its output: the maxima'),
      this.figure(this.channel('pool.g', p.incoming, c, size / 2), 'DeconvNet’s g arriving at the output'),
      this.figure(this.channel('pool.unpooled', p.unpooled, c, size), 'g unpooled: each to its switch'),
    );
    this.drawn['pool.switch-index'] = { shape: [outDims.h, outDims.w], values: sw };
    section.append(
      el('h2', { text: `Pooling: DeconvNet’s switches at ${p.label}` }),
      el('p', {
        class: 'note',
        text: `Max pooling keeps each window’s largest value and records where it was (the switch). Going back, each output’s gradient goes to that one position and the others get 0: DeconvNet’s “unpooling with switches”, which is also the ordinary gradient of max pooling. ${inDims.h}×${inDims.w} → ${outDims.h}×${outDims.w}, so ${pct(1 - outDims.valid / inDims.valid)} of the positions receive nothing.`,
      }),
      row,
    );
    return { section, name };
  }

  private drawCam(l: Loaded, picked: string, channel: number): { section: HTMLElement; layer: string | null; pending: boolean } {
    const section = el('section', { class: 'gradcam' });
    let layer = picked;
    let note = '';
    try {
      methodByName('gradCam').check(l.model, { layer });
    } catch {
      try {
        layer = defaultCamLayer('gradCam', l.model);
      } catch (e) {
        section.append(el('h2', { text: 'Grad-CAM' }), el('p', { class: 'note', text: (e as Error).message }));
        return { section, layer: null, pending: false };
      }
      note = ` (${picked} has no spatial map; Grad-CAM’s default layer instead)`;
    }
    let entry = l.cams.get(layer);
    if (!entry) {
      const made = { promise: null as unknown as Promise<GradCamData>, value: null as GradCamData | null, error: null as string | null };
      made.promise = this.withInput(l, ({ model, x, target }) => traceGradCam(model, x, { layer, target }));
      made.promise.then(
        (v) => {
          made.value = v;
        },
        (e: Error) => {
          made.error = e.message;
        },
      ).finally(() => {
        if (this.loaded === l) this.redraw();
      });
      l.cams.set(layer, made);
      entry = made;
    }
    section.append(el('h2', { text: `Grad-CAM at ${layer}${note}` }));
    if (entry.error) {
      section.append(el('p', { class: 'message', text: entry.error }));
      return { section, layer, pending: false };
    }
    if (!entry.value) {
      section.append(el('p', { class: 'note', text: `computing Grad-CAM at ${layer}…` }));
      return { section, layer, pending: true };
    }
    const cam = entry.value;
    const K = cam.alpha.length;
    const c = channel < K ? channel : 0;
    section.append(
      el('p', {
        class: 'note',
        text: `Grad-CAM weighs each of the layer’s ${K} channels A^k by α_k, the mean of the gradient ∂S/∂A^k over the channel’s ${cam.A.shape[2]}×${cam.A.shape[3]} positions, sums the weighted maps and keeps the positive part: map = ReLU(Σ_k α_k A^k). Click a bar or a map to pick a channel.`,
      }),
    );
    this.drawn['gradcam.alpha'] = { shape: [K], values: cam.alpha };
    const sumScale = absMax(cam.sum.values);
    const row = el(
      'div',
      { class: 'row' },
      this.figure(this.bars(cam.alpha, c, (k) => this.update({ channel: k })), 'α_k, one bar per channel', `(α_${c} = ${fmt(cam.alpha[c]!)})`),
      this.figure(this.grid('gradcam.weighted', cam.weighted, 320, c, (k) => this.update({ channel: k })), 'α_k·A^k, one map per channel (one scale)'),
      this.figure(this.channel('gradcam.sum', cam.sum, 0, 150, sumScale), 'Σ_k α_k·A^k', `±${fmt(sumScale)}`),
      this.figure(this.channel('gradcam.map', cam.map, 0, 150, sumScale), 'ReLU(Σ): the Grad-CAM map (from the GPU)'),
    );
    section.append(row);
    return { section, layer, pending: false };
  }

  /** α as an SVG bar chart (positive up in red, negative down in blue), the chosen bar outlined. */
  private bars(alpha: Float32Array, chosen: number, pick: (k: number) => void): SVGSVGElement {
    const K = alpha.length;
    const bw = Math.max(3, Math.min(14, Math.floor(300 / K)));
    const width = bw * K + 8;
    const height = 150;
    const max = absMax(alpha) || 1;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('class', 'bars');
    svg.setAttribute('width', String(width));
    svg.setAttribute('height', String(height));
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `channel weights α_k of ${K} channels`);
    const mid = height / 2;
    const axis = document.createElementNS(ns, 'line');
    for (const [k, v] of Object.entries({ x1: '0', x2: String(width), y1: String(mid), y2: String(mid), stroke: '#99a' })) axis.setAttribute(k, v);
    svg.append(axis);
    alpha.forEach((a, k) => {
      const h = (Math.abs(a) / max) * (mid - 4);
      const r = document.createElementNS(ns, 'rect');
      r.setAttribute('x', String(4 + k * bw));
      r.setAttribute('y', String(a >= 0 ? mid - h : mid));
      r.setAttribute('width', String(Math.max(1, bw - 1)));
      r.setAttribute('height', String(Math.max(0.5, h)));
      r.setAttribute('fill', a >= 0 ? '#b2182b' : '#2166ac');
      r.setAttribute('data-channel', String(k));
      if (k === chosen) r.setAttribute('class', 'chosen');
      const title = document.createElementNS(ns, 'title');
      title.textContent = `α_${k} = ${fmt(a)}`;
      r.append(title);
      svg.append(r);
    });
    svg.addEventListener('click', (e) => {
      const box = svg.getBoundingClientRect();
      const k = Math.floor((e.clientX - box.left - 4) / bw);
      if (k >= 0 && k < K) pick(k);
    });
    return svg;
  }

  private drawSteps(l: Loaded, step: StepData | null, index: number): HTMLElement {
    const steps = l.data.method.steps;
    const m = l.data.method;
    const section = el('section', { class: 'steps' }, el('h2', { text: `Stepping through ${m.label}’s backward pass` }));
    if (!step) {
      section.append(el('p', { class: 'note', text: `${m.label} makes no backward pass (${m.passes.join(', ')}): there is nothing to step through. Pick another method.` }));
      return section;
    }
    const prev = el('button', { type: 'button', id: 'inside-prev', 'aria-label': 'previous step (toward the output)', text: '← previous' });
    const next = el('button', { type: 'button', id: 'inside-next', 'aria-label': 'next step (toward the input)', text: 'next →' });
    (prev as HTMLButtonElement).disabled = index === 0;
    (next as HTMLButtonElement).disabled = index === steps.length - 1;
    prev.addEventListener('click', () => this.stepBy(-1));
    next.addEventListener('click', () => this.stepBy(1));
    const where = el('output', { id: 'inside-step', 'aria-live': 'polite', text: `step ${index + 1} of ${steps.length}` });
    section.append(
      el('p', {
        class: 'note',
        text: 'The tape replays the forward pass backwards, one entry (one op) at a time, from the class score down to the input. Use the buttons or the ← and → keys (Home and End for the ends).',
      }),
      el('div', { class: 'stepper' }, prev, where, next, el('span', { class: 'note', text: step.pass })),
    );
    const ruleText = step.rule
      ? `${step.rule.activation} ${step.rule.rule}${step.rule.fused ? ' (fused into the op)' : ''}: g_in = ${RULE_FORMULAS[step.rule.rule] ?? step.rule.rule}, then ${OP_RULES[step.op] ?? 'the op’s gradient'}`
      : (OP_RULES[step.op] ?? 'the op’s own gradient');
    section.append(
      el('h3', { text: `${step.op} at ${step.label}${step.rules ? ` — ${step.rules}` : ''}` }),
      el('div', { class: 'formula', text: ruleText }),
      el('div', { class: 'kernels', text: step.kernels.length ? `kernels: ${step.kernels.map((k) => `${k.name} [${k.workgroups.join('×')}]`).join(', ')}` : 'kernels: none (nothing below needs a gradient)' }),
    );
    const row = el('div', { class: 'row' });
    const size = 260;
    if (step.incoming) row.append(this.figure(this.grid('step.in', step.incoming, size, null), `in: g ${shapeText(step.incoming.shape)}`, stats(step.incoming.values)));
    if (step.rule) row.append(this.figure(this.grid('step.after', step.rule.after, size, null), `after the ${step.rule.rule} rule`, stats(step.rule.after.values)));
    if (step.switches) {
      const out = step.incoming ? planeDims(step.incoming.shape) : null;
      const target = step.outgoing[0] ? planeDims(step.outgoing[0].plane.shape) : null;
      if (out && target) {
        const bits = new Uint8Array(target.channels * target.valid);
        for (let c = 0; c < target.channels; c++) bits.set(switchTargets(step.switches.subarray(c * out.valid, (c + 1) * out.valid), target.valid), c * target.valid);
        const plane = { shape: step.outgoing[0]!.plane.shape, values: Float32Array.from(bits) };
        row.append(this.figure(this.grid('step.switches', plane, size, null, undefined, true), 'the switches: where each window’s maximum was'));
      }
    }
    for (const o of step.outgoing) row.append(this.figure(this.grid(`step.out.${o.input}`, o.plane, size, null), `out: g to input ${o.input} ${shapeText(o.plane.shape)}`, stats(o.plane.values)));
    if (!step.outgoing.length) row.append(el('p', { class: 'note', text: 'Nothing goes out: no input of this op needs a gradient (the pass stops here).' }));
    section.append(row);
    return section;
  }
}

/** A layer's label without the long scopes of imported graphs: 'model_1/conv2d_5/BiasAdd' → 'conv2d_5/BiasAdd'. */
function shortLabel(label: string): string {
  return label
    .split('+')
    .map((part) => part.split('/').slice(-2).join('/'))
    .join('+');
}

function stats(values: ArrayLike<number>): string {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    min = Math.min(min, values[i]!);
    max = Math.max(max, values[i]!);
  }
  return values.length ? `min ${fmt(min)}, max ${fmt(max)}, zeros ${pct(zerosShare(values))}` : '';
}

/** The channel with the largest mean value (the first on ties); 0 for a vector. */
function mostActive(p: Plane): number {
  const d = planeDims(p.shape);
  let best = 0;
  let bestMean = -Infinity;
  for (let c = 0; c < d.channels; c++) {
    let s = 0;
    for (let i = 0; i < d.valid; i++) s += p.values[c * d.valid + i]!;
    if (s / d.valid > bestMean) {
      bestMean = s / d.valid;
      best = c;
    }
  }
  return best;
}

let objects = 0;
const objectIds = new WeakMap<object, number>();
/** Tells image objects (a File, an <img>) apart for the view's cache key. */
function objectKey(o: object): string {
  if (!objectIds.has(o)) objectIds.set(o, ++objects);
  return `#${objectIds.get(o)}`;
}
